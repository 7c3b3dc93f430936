"""Intake and eligibility: from the packages that arrived to the eligibility export.

One module per concern, each importable on its own (this package imports none of them):

- :mod:`~kepu.intake.packages` — the inbox's packages: stable ids, folder names, safe extraction, roles of files;
- :mod:`~kepu.intake.sources` — the units' summary sheet (汇总表) and an S3 prefix as an inbox;
- :mod:`~kepu.intake.fetch` — downloads of direct links listed in the sheet;
- :mod:`~kepu.intake.forms` — the application forms read from Word or Excel files, put together from
  :mod:`~kepu.intake.form_tables` (the files as grids of cells), :mod:`~kepu.intake.form_fields` (labels and
  their values in a grid) and :mod:`~kepu.intake.form_signoff` (signature and seal blocks);
- :mod:`~kepu.intake.form_values` — phone numbers, e-mail addresses and counts as units write them;
- :mod:`~kepu.intake.form_checks` — a form's findings and what a person checks on it by eye;
- :mod:`~kepu.intake.form_templates` — the notice's forms as Word files, blank and filled;
- :mod:`~kepu.intake.package_checks` — what one package holds: folder name, video, cover, synopsis, form;
- :mod:`~kepu.intake.images` — covers made into the 16:9 JPEG the platforms show;
- :mod:`~kepu.intake.quality` — campaign-wide checks of every submission (Great Expectations);
- :mod:`~kepu.intake.eligibility_rules` — quotas, channels and the deadline;
- :mod:`~kepu.intake.export` — the eligibility export; :mod:`~kepu.intake.report` — its workbook and HTML report;
- :mod:`~kepu.intake.steps` — the steps the intake DAG and the command line call;
- :mod:`~kepu.intake.checker` — ``kepu check``: the same checks on one local package.
"""
