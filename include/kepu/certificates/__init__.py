"""Certificates of the awards: numbers, the PDF, where it is kept, how it is verified, and the steps.

- :mod:`kepu.certificates.numbers` — unguessable numbers (an HMAC of campaign, type, submission, generation);
- :mod:`kepu.certificates.render` — the certificate as a PDF (embedded CJK TrueType subset, QR code);
- :mod:`kepu.certificates.store` — object keys of the PDFs, the per-unit print files and the register;
- :mod:`kepu.certificates.verify` — the verification URL printed on each certificate and the public status;
- :mod:`kepu.certificates.steps` — issue, render, print files, revoke and reissue (the DAG's tasks and the CLI).
"""
