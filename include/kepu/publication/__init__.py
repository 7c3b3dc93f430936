"""Publication of the selected works and the results: packages, catalog, gallery, partner platforms, e-mails.

- :mod:`kepu.publication.privacy` — contact data kept out of everything published;
- :mod:`kepu.publication.package` — one work's package (video, cover, subtitles, metadata) under the public prefix;
- :mod:`kepu.publication.catalog` — ``catalog.json`` of the published works;
- :mod:`kepu.publication.gallery` — a static HTML gallery served straight from the bucket (relative links);
- :mod:`kepu.publication.platforms` — pushes to partner platforms (Airflow HTTP connections), with retries;
- :mod:`kepu.publication.report` — per-platform report (XLSX and JSON, in Chinese);
- :mod:`kepu.publication.notify` — e-mails to the submitters through Airflow's SMTP provider, once per result;
- :mod:`kepu.publication.steps` — the DAG's tasks.
"""
