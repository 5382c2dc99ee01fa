"""HIS sync: pull patients and encounters from a hospital information system, incrementally,
into the store; quarantine every row that cannot be trusted, with the reason.

    mapping.py     the mapping file (YAML): which HIS column is which field, code tables
    sources.py     the `Source` seam: SQLAlchemy URL (streamed) or CSV/XLSX files
    testing.py     in-memory and flaky sources (the seam's fakes)
    rows.py        raw row -> typed record or reject (pure); dates.py, phones.py its helpers
    encoding.py    records as the store keeps them; records.py the typed values
    parallel.py    parsing on a process pool, results in order
    store_writer.py  upserts + quarantine + watermark, one transaction per batch
    sync.py        `HisSync`: one run (retries, resume, run log, progress)
    reports.py     the quarantine and the run log, read back for the administrator
    synthetic.py   a synthetic HIS with deliberately broken rows and their manifest

Imports only `core` (checked by import-linter).
"""
