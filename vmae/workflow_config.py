"""The Snakefile's config check: the merged config against ``workflow/schemas/config.schema.yaml``.

Defaults of the schema are filled in as ``snakemake.utils.validate(config, schema, set_default=True)``
fills them (a property's ``default`` is set where the key is absent, before its value is checked).
An error is one line: the config file the bad key or value comes from (of Snakemake's
``workflow.configfiles``), the dotted key, what was wrong and what was expected (no schema dump), e.g.
``bad.yaml: studies.data_efficency: unknown key: expected one of ['data_efficiency', ...]``.

The schema names no method or masking strategy: ``load_schema`` fills in the registered ones
(vmae.methods, vmae.models.masking) as the enums of ``method``, ``method_or_scratch`` and
``masking``, a required recipe for each method, and the data-efficiency study's default methods.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from vmae.data.registry import _describe, _most_specific
from vmae.errors import UserError

_ABSENT = object()  # no value at a key path


class WorkflowConfigError(UserError, ValueError):
    """The workflow config does not match its schema."""


def validate_config(config: dict[str, Any], schema_path: str | Path, config_files: Iterable[str | Path]) -> None:
    """Fill ``config``'s defaults from the schema at ``schema_path`` (in place) and check it; raise
    ``WorkflowConfigError`` naming the one of ``config_files`` the bad key or value comes from."""
    schema = load_schema(schema_path)
    errors = list(_default_filling_validator(schema).iter_errors(config))
    if errors:
        error = _most_specific(errors)
        files = _blamed_files(error, [str(f) for f in config_files])
        raise WorkflowConfigError(f"{' + '.join(files) or 'config'}: {_describe(error)}")


def load_schema(schema_path: str | Path) -> dict[str, Any]:
    """The config schema at ``schema_path`` with the registered methods and masking strategies filled in."""
    from vmae import methods
    from vmae.models.masking import MASKINGS

    schema = yaml.safe_load(Path(schema_path).read_text())
    names = list(methods.names())
    definitions = schema["definitions"]
    definitions["method"]["enum"] = names
    definitions["method_or_scratch"]["enum"] = ["scratch", *names]
    definitions["masking"]["enum"] = list(MASKINGS)
    recipes = schema["properties"]["recipes"]
    recipes["properties"].update({name: {"$ref": "#/definitions/recipe"} for name in names})
    recipes["required"] = [*names, *recipes["required"]]
    efficiency = schema["properties"]["studies"]["properties"]["data_efficiency"]["properties"]["methods"]
    efficiency["default"] = ["scratch", *names]
    return schema


def _default_filling_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """The schema's validator class (its ``$schema``) extended to set each absent property's default."""
    base = jsonschema.validators.validator_for(schema)
    check_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties: dict, instance: Any, subschema: dict) -> Iterator:
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, copy.deepcopy(prop["default"]))
        yield from check_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def _blamed_files(error: jsonschema.ValidationError, files: list[str]) -> list[str]:
    """The files that hold the bad value at the error's key path (the merged config took it from one
    of them), else those that hold the key path at all, else all ``files`` (a missing key, say)."""
    path, value = _offending(error)
    held = {file: found for file in files if (found := _lookup(file, path)) is not _ABSENT}
    return [file for file, found in held.items() if found == value] or list(held) or files


def _offending(error: jsonschema.ValidationError) -> tuple[list[Any], Any]:
    """The key path and value the error is about; for an unknown key, the path down to it and its value."""
    path, value = list(error.absolute_path), error.instance
    if error.validator == "additionalProperties" and isinstance(value, dict):
        unknown = sorted(k for k in value if k not in error.schema.get("properties", {}))
        if unknown:
            path, value = path + unknown[:1], value[unknown[0]]
    return path, value


def _lookup(file: str, path: list[Any]) -> Any:
    """The value at ``path`` (keys, list indices) of the YAML ``file``; ``_ABSENT`` where it has none
    (or the path is empty: the whole config)."""
    try:
        data = yaml.safe_load(Path(file).read_text())
    except (OSError, yaml.YAMLError):
        return _ABSENT
    for key in path:
        if not (isinstance(data, dict) and key in data
                or isinstance(data, list) and isinstance(key, int) and key < len(data)):
            return _ABSENT
        data = data[key]
    return data if path else _ABSENT
