"""The mapping file: how one HIS's tables become our patients and encounters.

A mapping is YAML, validated with pydantic; every error names the file, the line and the
field (`core.yamlfile`). Shape::

    timezone: Asia/Shanghai          # zone of the HIS's naive timestamps (default: hospital's)
    date_formats: ["%Y/%m/%d"]       # tried after ISO 8601, for every entity
    patients:                        # one section per entity: patients, encounters
      table: his_patients            # or  query: "SELECT ... FROM ..."  (SQL sources)
      key: patient_id                # the HIS id column; must map to `his_id`
      watermark: updated_at          # rows are read in (watermark, key) order, incrementally
      fields: {patient_id: his_id, xm: name, ...}   # HIS column -> our field
      date_formats: [...]            # optional, overrides the top-level list
    sex: {"1": male, "2": female}    # code tables: HIS code -> our value
    encounter_type: {ZY: inpatient}
    departments: {"0301": {code: CARD, name: 心血管内科, name_en: Cardiology}}
    disposition: {"1": home}         # optional; without it the HIS value is kept as is
    language: {zh: zh-CN}            # optional; without it the value must already be a tag

A CSV/XLSX source uses the same file: `table:` names the CSV file (`<table>.csv` beside the
given path) or the workbook sheet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.enums import EncounterType, Sex
from core.errors import FileValidationError
from core.yamlfile import LineMap, load_yaml_with_lines

Entity = Literal["patients", "encounters"]
ENTITIES: tuple[Entity, ...] = ("patients", "encounters")

PATIENT_FIELDS = frozenset({
    "his_id", "mrn", "name", "sex", "birth_date", "phone", "phone_alt", "language", "timezone",
    "deceased", "opt_out_phone", "opt_out_sms", "consent_phone", "consent_sms",
    "voicemail_ok",
})
ENCOUNTER_FIELDS = frozenset({
    "his_id", "patient_his_id", "type", "department", "attending_doctor", "admit_at",
    "discharge_at", "diagnoses", "procedures", "disposition",
})
# Fields a mapping must provide a column for (the row may still lack a value: a reject).
REQUIRED_FIELDS: dict[str, frozenset[str]] = {
    "patients": frozenset({"his_id", "mrn", "name", "phone"}),
    "encounters": frozenset({"his_id", "patient_his_id", "type", "department", "admit_at"}),
}
KNOWN_FIELDS: dict[str, frozenset[str]] = {"patients": PATIENT_FIELDS,
                                           "encounters": ENCOUNTER_FIELDS}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_formats(value: tuple[str, ...]) -> tuple[str, ...]:
    for fmt in value:
        if "%" not in fmt:
            raise ValueError(f"{fmt!r} is not a strftime format (no % directive)")
    return value


class EntityMapping(_Model):
    """Where one entity's rows come from and how their columns map to our fields."""

    table: str | None = None
    query: str | None = None
    key: str
    watermark: str
    fields: dict[str, str]
    date_formats: tuple[str, ...] | None = None

    @field_validator("date_formats")
    @classmethod
    def _formats(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _check_formats(value)

    @model_validator(mode="after")
    def _one_origin(self) -> EntityMapping:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table:` or `query:`")
        if self.fields.get(self.key) != "his_id":
            raise ValueError(f"the key column {self.key!r} must be mapped to his_id in fields")
        return self

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The HIS columns to read: every mapped column, then the watermark if unmapped."""
        cols = list(self.fields)
        if self.watermark not in cols:
            cols.append(self.watermark)
        return tuple(cols)


class DepartmentCode(_Model):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=128)
    name_en: str = Field(default="", max_length=128)


class HisMapping(_Model):
    """A whole mapping file, validated."""

    timezone: str | None = None
    date_formats: tuple[str, ...] = ()
    patients: EntityMapping
    encounters: EntityMapping
    sex: dict[str, Sex] = Field(default_factory=dict)
    encounter_type: dict[str, EncounterType] = Field(min_length=1)
    departments: dict[str, DepartmentCode] = Field(min_length=1)
    disposition: dict[str, str] | None = None
    language: dict[str, str] | None = None

    @field_validator("date_formats")
    @classmethod
    def _formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_formats(value)

    @field_validator("sex", "encounter_type", "departments", "disposition", "language",
                     mode="before")
    @classmethod
    def _codes_are_text(cls, value: Any) -> Any:
        # YAML reads `1: male` as an int key; HIS codes are text.
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

    def entity(self, name: str) -> EntityMapping:
        return self.patients if name == "patients" else self.encounters

    def formats_for(self, name: str) -> tuple[str, ...]:
        own = self.entity(name).date_formats
        return own if own is not None else self.date_formats


def _check_fields(mapping: HisMapping, lines: LineMap) -> None:
    for entity in ENTITIES:
        spec = mapping.entity(entity)
        seen: dict[str, str] = {}
        for column, field in spec.fields.items():
            loc = (entity, "fields", column)
            if field not in KNOWN_FIELDS[entity]:
                known = ", ".join(sorted(KNOWN_FIELDS[entity]))
                raise lines.error(loc, f"unknown field {field!r} (known: {known})")
            if field in seen:
                raise lines.error(loc, f"field {field!r} is already mapped from {seen[field]!r}")
            seen[field] = column
        missing = sorted(REQUIRED_FIELDS[entity] - set(seen))
        if missing:
            raise lines.error((entity, "fields"), f"no column mapped to {', '.join(missing)}")
    if mapping.timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(mapping.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise lines.error(("timezone",), f"unknown time zone {mapping.timezone!r}") from None


def parse_mapping(data: Any, lines: LineMap) -> HisMapping:
    """Validate loaded YAML; raises FileValidationError naming file, line and field."""
    if not isinstance(data, dict):
        raise lines.error((), "a mapping file must be a YAML mapping")
    try:
        mapping = HisMapping.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
        msg = str(err["msg"])
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise lines.error(loc, msg) from None
    _check_fields(mapping, lines)
    return mapping


def load_mapping(path: str | Path) -> HisMapping:
    """Read and validate a mapping file. Raises FileValidationError."""
    data, lines = load_yaml_with_lines(path)
    return parse_mapping(data, lines)


DEFAULT_MAPPING = Path(__file__).resolve().parent / "mappings" / "synthetic.yaml"

__all__ = ["DEFAULT_MAPPING", "ENTITIES", "EntityMapping", "FileValidationError", "HisMapping",
           "load_mapping", "parse_mapping"]
