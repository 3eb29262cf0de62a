"""The schema's defaults and config.yaml agree: one source of values (see the schema's description)."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CLI_DEFAULTS = {"ensemble.folds"}  # defaults that are the CLIs' on purpose (config.yaml asks for 5 folds)


def schema_defaults(node: dict, definitions: dict, path: tuple = ()):
    """(dotted key, default) of every scalar default in the schema; ``*`` stands for any name of a mapping."""
    if "$ref" in node:
        yield from schema_defaults(definitions[node["$ref"].split("/")[-1]], definitions, path)
    if "default" in node and not isinstance(node["default"], dict):
        yield ".".join(path), node["default"]
    for key, child in (node.get("properties") or {}).items():
        yield from schema_defaults(child, definitions, path + (key,))
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_defaults(node["additionalProperties"], definitions, path + ("*",))


def values_at(config, key: str) -> list:
    """The values config.yaml gives ``key`` (several under a ``*``; none where it leaves the key out)."""
    found = [config]
    for part in key.split("."):
        found = [v for item in found if isinstance(item, dict) for v in (item.values() if part == "*" else [item[part]] if part in item else [])]
    return found


def test_every_schema_default_is_config_yaml_s_value():
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    defaults = dict(schema_defaults(schema, schema["definitions"]))
    assert defaults["img_size"] == 32 and defaults["ensemble.folds"] == 15
    differing = {key: (default, values_at(config, key)) for key, default in defaults.items()
                 if key not in CLI_DEFAULTS and any(value != default for value in values_at(config, key))}
    assert differing == {}

