"""A FHIR R4 server as an HIS source: Patient and Encounter searched by _lastUpdated.

`FhirSource(base_url, ...)` is a `hisync.sources.Source` over `hisync.fhir_rows`' mapping
(`fhir_mapping`): `batches` searches `<base>/<Resource>?_lastUpdated=ge<watermark>
&_sort=_lastUpdated&_count=<n>` (encounters with `_include=Encounter:subject`, so each
visit's patient id is known) and follows the bundle's `next` links. Resuming re-reads every
resource at the watermark instead of skipping by key: a server orders ties as it likes, and
a resource read twice costs a hash compare. A server that does not answer, or answers 5xx,
429 or 408, is `SourceUnavailable` (the sync retries with backoff); another 4xx is a
`SourceError` with the server's OperationOutcome text.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import httpx

from core.errors import SourceError, SourceUnavailable
from core.fhir_outcome import outcome_text
from hisync.fhir_rows import encounter_row, patient_row
from hisync.mapping import EntityMapping
from hisync.sources import Mark, RawBatch, regroup

_TEMPORARY = (408, 429)


class FhirSource:
    def __init__(self, base_url: str, patient_system: str, encounter_system: str,
                 timeout_s: float = 30.0) -> None:
        self._base = base_url.rstrip("/")
        self._patient_system = patient_system
        self._encounter_system = encounter_system
        self._client = httpx.Client(timeout=timeout_s,
                                    headers={"Accept": "application/fhir+json"})

    @property
    def name(self) -> str:
        return f"fhir:{httpx.URL(self._base).copy_with(username=None, password=None)}"

    def _get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            reply = self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"FHIR server {self._base}: {type(exc).__name__}: "
                                    f"{exc}") from None
        if reply.status_code >= 500 or reply.status_code in _TEMPORARY:
            raise SourceUnavailable(f"FHIR server {self._base}: HTTP {reply.status_code}")
        if not reply.is_success:
            raise SourceError(f"FHIR server {self._base}: HTTP {reply.status_code}: "
                              f"{outcome_text(reply.text)}")
        try:
            bundle: dict[str, Any] = reply.json()
        except ValueError:
            raise SourceError(f"FHIR server {self._base}: the answer is not JSON") from None
        return bundle

    def _pages(self, resource: str, after: Mark | None, count: int
               ) -> Iterator[dict[str, Any]]:
        params = {"_sort": "_lastUpdated", "_count": str(count)}
        if after is not None:
            params["_lastUpdated"] = f"ge{after.watermark}"
        if resource == "Encounter":
            params["_include"] = "Encounter:subject"
        bundle = self._get(f"{self._base}/{resource}", params)
        while True:
            yield bundle
            nxt = next((link.get("url") for link in bundle.get("link", [])
                        if link.get("relation") == "next"), None)
            if not nxt:
                return
            bundle = self._get(str(nxt))

    def _rows(self, entity: EntityMapping, after: Mark | None, count: int
              ) -> Iterator[list[tuple[Any, ...]]]:
        resource = entity.table or "Patient"
        columns = entity.source_columns
        for bundle in self._pages(resource, after, count):
            resources = [e.get("resource") or {} for e in bundle.get("entry", [])]
            if resource == "Patient":
                raws = [patient_row(r, self._patient_system) for r in resources
                        if r.get("resourceType") == "Patient"]
            else:
                subjects = {f"Patient/{r.get('id')}": patient_row(r, self._patient_system)
                            ["his_id"] or "" for r in resources
                            if r.get("resourceType") == "Patient"}
                raws = [encounter_row(r, self._encounter_system, subjects)
                        for r in resources if r.get("resourceType") == "Encounter"]
            rows = [tuple(raw.get(c) for c in columns) for raw in raws]
            wm, key = columns.index(entity.watermark), columns.index(entity.key)
            yield sorted(rows, key=lambda r: (r[wm] or "", r[key] or ""))

    def batches(self, entity: EntityMapping, after: Mark | None,
                batch_size: int) -> Generator[RawBatch, None, None]:
        columns = entity.source_columns
        yield from regroup(self._rows(entity, after, min(batch_size, 1000)),
                           columns.index(entity.watermark), columns.index(entity.key))

    def count(self, entity: EntityMapping, after: Mark | None) -> int | None:
        return None

    def close(self) -> None:
        self._client.close()
