"""The dataset registry: one YAML per dataset in ``datasets/``, validated against
``workflow/schemas/dataset.schema.yaml`` (defaults filled from the schema).

``load_spec("synthetic-clean")`` reads ``<datasets>/synthetic-clean.yaml``; a path to a YAML file
works too. ``<datasets>`` is the ``datasets/`` folder at the repository root, or ``$VMAE_DATASETS``,
or the ``root`` argument. A bad file raises ``DatasetSpecError`` naming the file, the field and what
was expected.

Local files: a dataset file (which may come from the internet) names its downloads by ``http(s)://``
URLs only; a ``file://`` URL, which would copy any file the user can read into the raw folder, is
refused. A ``datasets.sources`` file (``override_source``: a local mirror, such as the rehearsal's
``results/mirror/sources.yaml`` written by `vmae mirror`) may name ``file://`` URLs of files in its
own folder, and no others.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from vmae.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "dataset.schema.yaml"
ENV_VAR = "VMAE_DATASETS"


class DatasetSpecError(UserError, ValueError):
    """A dataset YAML is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class DatasetSpec:
    """One validated ``datasets/<name>.yaml`` with schema defaults filled in."""

    name: str
    domain: str
    num_classes: int
    source: dict[str, Any]  # {"kind": "synthetic", "generator": {...}} | download | manual
    format: str  # annotation parser (vmae.data.formats) or "synthetic"
    format_options: dict[str, Any]
    sampling_mode: str  # dense | segments
    frame_stride: int
    flip_allowed: bool
    flip_label_map: dict[str, str]  # class name -> class name a horizontal flip turns it into
    paper_name: str | None
    path: Path  # the YAML file
    description: str = ""

    @property
    def report_split(self) -> str:
        """The split every reported number is scored on: "test" for synthetic data (train / val /
        test; settings are chosen on val), "val" for the real datasets (their official evaluation
        list, the one the paper reports on)."""
        return "test" if self.source["kind"] == "synthetic" else "val"


def datasets_dir(root: str | Path | None = None) -> Path:
    """The folder of dataset YAMLs: ``root``, else ``$VMAE_DATASETS``, else ``<repo>/datasets``."""
    if root is not None:
        return Path(root)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return REPO_ROOT / "datasets"


def spec_path(name_or_path: str | Path, root: str | Path | None = None) -> Path:
    """The YAML file for a dataset name (file stem in the datasets folder) or a path to a YAML."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        return Path(text)
    return datasets_dir(root) / f"{text}.yaml"


def list_specs(root: str | Path | None = None) -> list[str]:
    """Names of the datasets in the datasets folder, sorted."""
    folder = datasets_dir(root)
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_spec(name_or_path: str | Path, root: str | Path | None = None) -> DatasetSpec:
    """Read, validate and default-fill one dataset YAML."""
    path = spec_path(name_or_path, root)
    if not path.is_file():
        known = ", ".join(list_specs(root)) or "none"
        raise DatasetSpecError(f"{path}: no such dataset file (datasets in {datasets_dir(root)}: {known}); "
                               f"expected a name from datasets/ or a path to a YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DatasetSpecError(f"{path}: not valid YAML: {err}") from None
    return spec_from_dict(data, path)


def spec_from_dict(data: Any, path: Path) -> DatasetSpec:
    """Validate ``data`` (the parsed YAML of ``path``) and build the spec."""
    schema = _schema()
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(data))
    if errors:
        raise DatasetSpecError(f"{path}: {_describe(_most_specific(errors))}")
    data = copy.deepcopy(data)
    _fill_defaults(data, schema)
    if data["name"] != path.stem:
        raise DatasetSpecError(f"{path}: name: {data['name']!r}: expected the file name without .yaml, "
                               f"{path.stem!r}")
    if data["source"]["kind"] == "synthetic":
        _check_synthetic(data, path)
    local = _file_urls(data["source"])
    if local:
        i, url = local[0]
        raise DatasetSpecError(f"{path}: source.files.{i}.url: {url!r}: expected an https:// or http:// URL; a "
                               "dataset file may not name local files (a local mirror's file:// URLs go in a "
                               "`datasets.sources` file, `vmae prepare --sources`)")
    return DatasetSpec(
        name=data["name"],
        domain=data["domain"],
        num_classes=data["num_classes"],
        source=data["source"],
        format=data["format"],
        format_options=data["format_options"],
        sampling_mode=data["sampling"]["mode"],
        frame_stride=data["sampling"]["frame_stride"],
        flip_allowed=data["flip"]["allowed"],
        flip_label_map=dict(data["flip"].get("label_map", {})),
        paper_name=data.get("paper_name"),
        path=path,
        description=data.get("description", ""),
    )


def override_source(spec: DatasetSpec, sources: str | Path | None) -> DatasetSpec:
    """``spec`` with its ``source`` replaced by ``sources[spec.name]``, from a YAML file mapping dataset
    names to ``source`` sections (a local mirror's URLs and checksums: the rehearsal's, or a lab's
    copy), validated like a dataset file's ``source``; ``spec`` itself when ``sources`` is None or
    has no entry for it. The dataset file is never changed."""
    if sources is None:
        return spec
    path = Path(sources)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DatasetSpecError(f"{path}: cannot be read ({err}): expected a YAML file of dataset name -> "
                               "source") from None
    if not isinstance(data, dict):
        raise DatasetSpecError(f"{path}: {type(data).__name__}: expected a mapping of dataset name -> source")
    if spec.name not in data:
        return spec
    schema = _schema()["properties"]["source"]
    source = copy.deepcopy(data[spec.name])
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(source))
    if errors:
        where = _describe(_most_specific(errors)).replace("(top level)", "", 1).lstrip(".")
        raise DatasetSpecError(f"{path}: {spec.name}: source{'.' if where[:1] not in (':', '') else ''}{where}")
    _fill_defaults(source, schema)
    _check_local_files(source, path, spec.name)
    return dataclasses.replace(spec, source=source)


def _file_urls(source: dict[str, Any]) -> list[tuple[int, str]]:
    """(index, url) of the ``file://`` URLs among a download source's ``files``."""
    return [(i, entry["url"]) for i, entry in enumerate(source.get("files", []))
            if urllib.parse.urlsplit(entry["url"]).scheme.lower() == "file"]


def _check_local_files(source: dict[str, Any], path: Path, name: str) -> None:
    """Every ``file://`` URL of a sources file at ``path`` must name a file in ``path``'s own folder
    (or below it), on this host, after symbolic links are resolved."""
    folder = os.path.realpath(path.parent)
    for i, url in _file_urls(source):
        parts = urllib.parse.urlsplit(url)
        local = os.path.realpath(urllib.request.url2pathname(parts.path))
        if parts.netloc not in ("", "localhost") or not local.startswith(folder.rstrip(os.sep) + os.sep):
            raise DatasetSpecError(f"{path}: {name}: source.files.{i}.url: {url!r}: expected a file:// URL of a "
                                   f"file in {folder} (the sources file's own folder), or an http(s):// URL")


def flip_label_indices(label_map: dict[str, str], classes: list[str], source: str) -> list[int]:
    """``label_map`` (names) -> list where entry i is the class index a flip turns class i into."""
    index = {name: i for i, name in enumerate(classes)}
    for key, value in label_map.items():
        for name in (key, value):
            if name not in index:
                raise DatasetSpecError(f"{source}: flip.label_map.{key}: class {name!r} unknown; "
                                       f"expected one of {classes}")
        if label_map.get(value) != key:
            raise DatasetSpecError(f"{source}: flip.label_map.{value}: expected {key!r} "
                                   f"(symmetric pairs must both be listed)")
    return [index[label_map.get(name, name)] for name in classes]


def _check_synthetic(data: dict[str, Any], path: Path) -> None:
    """The synthetic class list is known up front: check num_classes, format and flip names."""
    from vmae.data.synthetic import CLASS_NAMES

    if data["format"] != "synthetic":
        raise DatasetSpecError(f"{path}: format: {data['format']!r}: expected 'synthetic' for "
                               "source.kind synthetic")
    if data["num_classes"] != len(CLASS_NAMES):
        raise DatasetSpecError(f"{path}: num_classes: {data['num_classes']}: expected {len(CLASS_NAMES)} "
                               f"(the synthetic classes {CLASS_NAMES})")
    flip_label_indices(data["flip"].get("label_map", {}), CLASS_NAMES, str(path))


@functools.cache
def _schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _most_specific(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    """The error to report; inside a ``oneOf`` of ``source`` kinds, the branch whose ``kind`` matched."""
    error = jsonschema.exceptions.best_match(errors)
    while error.validator == "oneOf" and error.context:
        branches: dict[int, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        matching = [errs for errs in branches.values()
                    if not any(e.validator == "const" or list(e.relative_path) == ["kind"] for e in errs)]
        if len(matching) != 1:
            break
        error = jsonschema.exceptions.best_match(matching[0])
    return error


def _describe(error: jsonschema.ValidationError) -> str:
    """``field.path: what is wrong: what was expected``."""
    where = ".".join(str(p) for p in error.absolute_path)
    kind, value = error.validator, error.validator_value
    if kind == "required":
        missing = [k for k in value if k not in error.instance]
        field = ".".join(filter(None, [where, missing[0]]))
        return f"{field}: missing: expected a required field{_doc(error.schema, missing[0])}"
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in allowed)
        field = ".".join(filter(None, [where, unknown[0]]))
        return f"{field}: unknown key: expected one of {allowed}"
    field = where or "(top level)"
    if kind == "oneOf":
        kinds = [branch.get("properties", {}).get("kind", {}).get("const") for branch in value]
        if isinstance(error.instance, dict) and all(kinds):
            given = repr(error.instance["kind"]) if "kind" in error.instance else "missing"
            return f"{'.'.join(filter(None, [where, 'kind']))}: {given}: expected one of {kinds}"
        value = f"a mapping of one of {len(value)} forms"
    if kind == "anyOf":
        value = "one of: " + " | ".join(branch.get("description", "?") for branch in value)
    expected = {
        "type": f"type {value}",
        "enum": f"one of {value}",
        "const": f"{value!r}",
        "minimum": f">= {value}",
        "maximum": f"<= {value}",
        "pattern": f"a string matching {value}",
        "minItems": f"at least {value} items",
        "oneOf": value,
        "anyOf": value,
    }.get(kind, error.message)
    doc = error.schema.get("description", "").strip() if isinstance(error.schema, dict) else ""
    value_text = repr(error.instance)
    value_text = value_text if len(value_text) <= 60 else value_text[:57] + "..."
    return f"{field}: {value_text}: expected {expected}" + (f" ({doc})" if doc else "")


def _doc(object_schema: dict[str, Any], key: str) -> str:
    desc = object_schema.get("properties", {}).get(key, {}).get("description")
    return f" ({desc.strip()})" if desc else ""


def _fill_defaults(instance: Any, schema: dict[str, Any]) -> None:
    """Insert schema ``default`` values for absent properties, recursively (in place). Inside a
    ``oneOf``/``anyOf`` only the branch the instance validates against is used."""
    for key in ("oneOf", "anyOf"):
        for branch in schema.get(key, []):
            if jsonschema.Draft7Validator(branch).is_valid(instance):
                _fill_defaults(instance, branch)
                break
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill_defaults(item, schema["items"])
    if not isinstance(instance, dict):
        return
    for name, sub in schema.get("properties", {}).items():
        if name not in instance and "default" in sub:
            instance[name] = copy.deepcopy(sub["default"])
        if name in instance:
            _fill_defaults(instance[name], sub)
