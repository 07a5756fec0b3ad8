"""marshmallow schemas derived from ``definitions`` (the one catalogue): loading and dumping.

* **Loading** (``load_resource``) checks a POST/PUT body or a PATCH result against the catalogue:
  JSON types (a string is a string, a boolean a boolean), ``required`` (on input), the longest value
  the storage holds, and characters no storage can hold (NUL, lone surrogates): 400
  ``invalidValue`` naming the attribute, before anything reaches Genesys or the database.
  Attribute names are matched case-insensitively (RFC 7643 §2.1) and spelled canonically.
  ``readOnly`` and ``writeOnly`` attributes (``id``, ``meta``, ``password``, ...) and attributes
  the catalogue does not list are dropped (RFC 7643 §7, RFC 7644 §3.3): what comes out is what the
  bridge keeps. ``null`` and empty values are unassigned (RFC 7643 §2.5) and dropped too.
* **Dumping** (``dump_resource``) shapes every SCIM answer: only catalogue attributes whose
  ``returned`` is not ``never`` leave the bridge, and ``attributes`` / ``excludedAttributes``
  (RFC 7644 §3.4.2.5) become marshmallow's ``only`` / ``exclude``; ``returned: always``
  attributes (``id``) and ``schemas`` are always kept.

Extension attributes live under their schema URN; marshmallow field names cannot hold its dots, so
the extension fields are named by ``definitions.EXTENSION_FIELDS`` and mapped to the URN here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from scim_bridge.scim import definitions
from scim_bridge.scim.definitions import Attribute
from scim_bridge.scim.errors import InvalidSyntax, InvalidValue

_CORE = {"User": definitions.USER_SCHEMA, "Group": definitions.GROUP_SCHEMA}
_URN_OF_FIELD = {v: k for k, v in definitions.EXTENSION_FIELDS.items()}
# Always returned whatever ``attributes`` says (RFC 7644 §3.4.2.5; RFC 7643 §3.1 id).
_ALWAYS = ("schemas", "id")


def storable_text(value: str) -> None:
    """Refuse characters that neither database (PostgreSQL rejects NUL in text) nor a UTF-8
    JSON body can carry (a lone surrogate such as ``"\\ud800"`` is valid JSON, not Unicode)."""
    if "\x00" in value:
        raise ValidationError("contains a NUL character (U+0000), which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = value[e.start]
        raise ValidationError(
            f"contains a lone surrogate (U+{ord(bad):04X}), which is not a Unicode character"
        ) from None


class StrictBoolean(fields.Boolean):
    """A JSON boolean only (the IdPs' string booleans were converted by the quirks)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


# --- loading ---------------------------------------------------------------------------------


class _LoadBase(Schema):
    class Meta:
        unknown = EXCLUDE  # not in the catalogue, read-only or write-only: ignored (RFC 7644 §3.3)


def _load_leaf(attribute: Attribute) -> fields.Field[Any]:
    if attribute.type == "boolean":
        return StrictBoolean()
    validators: list[Any] = [storable_text]
    if attribute.max_length is not None:
        validators.append(
            validate.Length(
                max=attribute.max_length,
                error=f"is longer than {attribute.max_length} characters",
            )
        )
    return fields.String(validate=validators)


def _load_field(attribute: Attribute, path: str) -> fields.Field[Any]:
    if attribute.type == "complex":
        inner: fields.Field[Any] = fields.Nested(
            _load_schema(attribute.sub_attributes, f"{path}{attribute.name}.")
        )
    else:
        inner = _load_leaf(attribute)
    name = f"{path}{attribute.name}"
    options: dict[str, Any] = {
        "required": attribute.must_be_given,
        "allow_none": not attribute.must_be_given,
        "error_messages": {
            "required": f"A required value was missing: {name}.",
            "null": f"A required value was missing: {name}.",
        },
    }
    if attribute.multi_valued:
        return fields.List(inner, **options)
    inner.required = options["required"]
    inner.allow_none = options["allow_none"]
    inner.error_messages = {**inner.error_messages, **options["error_messages"]}
    return inner


def _load_fields(attributes: Iterable[Attribute], path: str = "") -> dict[str, fields.Field[Any]]:
    return {
        a.name: _load_field(a, path)
        for a in attributes
        if a.writable and a.mutability != "writeOnly"
    }


def _load_schema(attributes: Iterable[Attribute], path: str = "") -> type[Schema]:
    return _LoadBase.from_dict(_load_fields(attributes, path), name="Load")


@functools.cache
def _loader(resource_type: str) -> Schema:
    core, extensions = definitions.RESOURCE_SCHEMAS[resource_type]
    declared: dict[str, fields.Field[Any]] = {
        "schemas": fields.List(fields.String(validate=storable_text)),
        "externalId": _load_field(definitions.EXTERNAL_ID, ""),
    }
    declared.update(_load_fields(core.attributes))
    for extension in extensions:
        if any(a.writable for a in extension.attributes):
            declared[definitions.EXTENSION_FIELDS[extension.id]] = fields.Nested(
                _load_schema(extension.attributes, f"{extension.id}:"),
                data_key=extension.id,
                allow_none=True,
            )
    return _LoadBase.from_dict(declared, name=f"{resource_type}Load")()


def _attributes_of(resource_type: str) -> dict[str, tuple[Attribute, ...]]:
    """Canonical top-level names -> sub-attributes, for the case-insensitive spelling."""
    core, extensions = definitions.RESOURCE_SCHEMAS[resource_type]
    out: dict[str, tuple[Attribute, ...]] = {a.name: a.sub_attributes for a in core.attributes}
    out["externalId"] = ()
    out["schemas"] = ()
    for extension in extensions:
        out[extension.id] = extension.attributes
    return out


def _canonical(value: Any, subs: Sequence[Attribute]) -> Any:
    if isinstance(value, list):
        return [_canonical(v, subs) for v in value]
    if not isinstance(value, Mapping) or not subs:
        return value
    known = {a.name.lower(): a for a in subs}
    out: dict[str, Any] = {}
    for key, item in value.items():
        attribute = known.get(key.lower()) if isinstance(key, str) else None
        if attribute is None:
            out[key] = item
        else:
            out[attribute.name] = _canonical(item, attribute.sub_attributes)
    return out


def canonical_keys(body: Mapping[str, Any], resource_type: str) -> dict[str, Any]:
    """Attribute names are case-insensitive (RFC 7643 §2.1): spell the known ones canonically,
    at every level."""
    top = _attributes_of(resource_type)
    known = {k.lower(): k for k in (*top, "id", "meta")}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = known.get(key.lower(), key) if isinstance(key, str) else key
        out[name] = _canonical(value, top.get(name, ()))
    return out


def _unassigned(value: Any) -> bool:
    # null and [] are unassigned (RFC 7643 §2.5); "" and {} are treated alike (Entra clears an
    # attribute by writing "" then null, E-LA).
    return value is None or value in ("", [], {})


def _prune(value: Any) -> Any:
    """Nulls and empty values are unassigned (RFC 7643 §2.5): drop them, depth first."""
    if isinstance(value, Mapping):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if not _unassigned(v)}
    if isinstance(value, list):
        items = [_prune(v) for v in value]
        return [v for v in items if not _unassigned(v)]
    return value


def _flatten(messages: Any, prefix: str = "") -> list[str]:
    if isinstance(messages, Mapping):
        out: list[str] = []
        for key, value in messages.items():
            if isinstance(key, int):
                out.extend(_flatten(value, prefix))
            elif isinstance(key, str) and key.lower().startswith("urn:"):
                out.extend(_flatten(value, f"{prefix}{key}:"))
            else:
                out.extend(_flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(messages, list):
        return [
            line
            for m in messages
            for line in (_flatten(m, prefix) if not isinstance(m, str) else [_line(prefix, m)])
        ]
    return [_line(prefix, str(messages))]


def _line(prefix: str, message: str) -> str:
    name = prefix.rstrip(".:")
    if message.startswith("A required value was missing") or not name:
        return message
    return f"{name}: {message}"


def load_resource(body: Any, resource_type: str) -> dict[str, Any]:
    """The body as the bridge keeps it (see the module docstring), or 400.

    ``schemas``, when given, must list the core schema URN (other URNs, such as Entra's non-URN
    group schema, are tolerated).
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntax(f"A {resource_type} must be a JSON object.")
    data = canonical_keys(body, resource_type)
    schemas = data.get("schemas")
    if schemas is not None:
        if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
            raise InvalidValue("'schemas' must be a list of schema URNs.")
        if _CORE[resource_type].lower() not in {s.lower() for s in schemas}:
            raise InvalidValue(f"'schemas' must include {_CORE[resource_type]} (RFC 7643 §3).")
    try:
        loaded: dict[str, Any] = _loader(resource_type).load(data)
    except ValidationError as e:
        lines = _flatten(e.messages)
        required = [line for line in lines if line.startswith("A required value was missing")]
        raise InvalidValue(required[0] if required else "; ".join(lines[:5])) from None
    for name, urn in _URN_OF_FIELD.items():
        if name in loaded:
            loaded[urn] = loaded.pop(name)
    pruned: dict[str, Any] = _prune(loaded)
    if "schemas" in data and "schemas" not in pruned:
        pruned["schemas"] = [_CORE[resource_type]]
    return pruned


# --- dumping ---------------------------------------------------------------------------------


class _DumpBase(Schema):
    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """Plain key access (no dotted paths: URNs hold dots); extension fields read their URN."""
        if not isinstance(obj, Mapping):
            return default
        return obj.get(_URN_OF_FIELD.get(attr, attr), default)


def _dump_field(attribute: Attribute) -> fields.Field[Any]:
    inner: fields.Field[Any] = (
        fields.Nested(_dump_schema(attribute.sub_attributes))
        if attribute.type == "complex"
        else fields.Raw()
    )
    return fields.List(inner) if attribute.multi_valued else inner


def _dump_fields(attributes: Iterable[Attribute]) -> dict[str, fields.Field[Any]]:
    return {a.name: _dump_field(a) for a in attributes if a.returnable}


def _dump_schema(attributes: Iterable[Attribute]) -> type[Schema]:
    return _DumpBase.from_dict(_dump_fields(attributes), name="Dump")


@functools.cache
def _dump_class(resource_type: str) -> type[Schema]:
    core, extensions = definitions.RESOURCE_SCHEMAS[resource_type]
    declared: dict[str, fields.Field[Any]] = {
        "schemas": fields.Raw(),
        "id": fields.Raw(),
        "externalId": fields.Raw(),
    }
    declared.update(_dump_fields(core.attributes))
    for extension in extensions:
        declared[definitions.EXTENSION_FIELDS[extension.id]] = fields.Nested(
            _dump_schema(extension.attributes), data_key=extension.id
        )
    declared["meta"] = fields.Raw()
    return _DumpBase.from_dict(declared, name=f"{resource_type}Dump")


def _field_path(resource_type: str, name: str) -> str | None:
    """A SCIM attribute name (``name.givenName``, ``urn:...:enterprise:2.0:User:manager.value``,
    a bare URN) as a dotted marshmallow field path; None when the catalogue does not list it."""
    core, extensions = definitions.RESOURCE_SCHEMAS[resource_type]
    lowered = name.strip().lower()
    for schema in sorted((core, *extensions), key=lambda s: len(s.id), reverse=True):
        urn = schema.id.lower()
        if lowered == urn:
            return None if schema is core else definitions.EXTENSION_FIELDS[schema.id]
        if lowered.startswith(urn + ":"):
            rest = name.strip()[len(urn) + 1 :]
            found = _attribute_path(schema.attributes, rest)
            if found is None or schema is core:
                return found
            return f"{definitions.EXTENSION_FIELDS[schema.id]}.{found}"
    return _unqualified_path(core, extensions, name)


def _unqualified_path(
    core: definitions.Schema, extensions: Sequence[definitions.Schema], name: str
) -> str | None:
    """``_field_path`` of a name without a schema URN: common, core, then extension attributes."""
    lowered = name.strip().lower()
    common = {"id": "id", "externalid": "externalId", "meta": "meta", "schemas": "schemas"}
    if lowered.split(".")[0] in common:
        return common[lowered.split(".")[0]]
    found = _attribute_path(core.attributes, name.strip())
    if found is not None:
        return found
    # An extension attribute named without its URN (as filters allow).
    for extension in extensions:
        found = _attribute_path(extension.attributes, name.strip())
        if found is not None:
            return f"{definitions.EXTENSION_FIELDS[extension.id]}.{found}"
    return None


def _attribute_path(attributes: Sequence[Attribute], dotted: str) -> str | None:
    head, _, tail = dotted.partition(".")
    attribute = next((a for a in attributes if a.name.lower() == head.lower()), None)
    if attribute is None or not attribute.returnable:
        return None
    if not tail:
        return attribute.name
    sub = attribute.sub(tail)
    if sub is None or not sub.returnable:
        return None
    return f"{attribute.name}.{sub.name}"


def _without_covered(paths: set[str]) -> tuple[str, ...]:
    """``name`` covers ``name.givenName``: marshmallow wants one or the other."""
    return tuple(
        sorted(p for p in paths if not any(p.startswith(q + ".") for q in paths if q != p))
    )


@functools.lru_cache(maxsize=256)
def _dumper(resource_type: str, only: tuple[str, ...] | None, exclude: tuple[str, ...]) -> Schema:
    return _dump_class(resource_type)(only=only, exclude=exclude)


def dump_resource(
    resource: Mapping[str, Any],
    resource_type: str,
    attributes: Sequence[str] = (),
    excluded: Sequence[str] = (),
) -> dict[str, Any]:
    """The resource as answered: catalogue attributes only, projected (RFC 7644 §3.4.2.5).

    Names the catalogue does not list are ignored in both parameters; ``attributes`` wins over
    ``excludedAttributes`` when both are given (the RFC allows one or the other).
    """
    only: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    if attributes:
        wanted = {p for p in (_field_path(resource_type, n) for n in attributes) if p}
        only = _without_covered(wanted | set(_ALWAYS))
    elif excluded:
        unwanted = {p for p in (_field_path(resource_type, n) for n in excluded) if p}
        exclude = _without_covered(unwanted - set(_ALWAYS))
    dumped: dict[str, Any] = _dumper(resource_type, only, exclude).dump(resource)
    return {k: dumped[k] for k in _key_order(resource_type) if dumped.get(k) is not None}


@functools.cache
def _key_order(resource_type: str) -> tuple[str, ...]:
    """The declared order of the top-level keys (``only`` would otherwise reorder them)."""
    fields_ = _dump_class(resource_type)().fields
    return tuple(f.data_key or name for name, f in fields_.items())


__all__ = ["ValidationError", "canonical_keys", "dump_resource", "load_resource", "storable_text"]
