# kepu image: the official Airflow image plus the system tools the media checks need, the pinned
# Python requirements and the kepu package. Built by docker-compose.yaml (see docs/deploy.md).
#
# The Airflow version in the tag below must equal the apache-airflow pin in requirements.txt
# (tests/unit/test_compose.py checks it).
FROM apache/airflow:3.3.2-python3.11

# ffmpeg/ffprobe for the media checks; Noto CJK so that reports render Chinese text; WenQuanYi Micro Hei, the
# TrueType CJK font embedded in certificates (pinned as in the Makefile: the same font gives the same PDF bytes).
USER root
RUN apt-get update \
  && apt-get install -y --no-install-recommends \
       ffmpeg \
       fonts-noto-cjk \
       fonts-wqy-microhei=0.2.0-beta-3.1 \
  && apt-get autoremove -yqq --purge \
  && apt-get clean \
  && rm -rf /var/lib/apt/lists/*

USER airflow

# Pinned runtime requirements. requirements.txt pins apache-airflow==<the image's version>, so pip
# keeps Airflow where the base image has it instead of upgrading or downgrading it.
COPY --chown=airflow:0 requirements.txt /opt/airflow/build/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/build/requirements.txt

# The kepu package, installed as a regular (non-editable) distribution: `import kepu` and the `kepu`
# command work in every container without PYTHONPATH. Its dependencies come from requirements.txt.
COPY --chown=airflow:0 pyproject.toml /opt/airflow/build/kepu/pyproject.toml
COPY --chown=airflow:0 include/kepu /opt/airflow/build/kepu/include/kepu
RUN pip install --no-cache-dir --no-deps /opt/airflow/build/kepu \
  && rm -rf /opt/airflow/build

# DAGs, plugins and campaign files (rules as data).
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 include/campaigns /opt/airflow/include/campaigns

# Fail the build, not the first task, when a piece is missing: the Celery executor, kepu, ffmpeg.
RUN python -c "import airflow.providers.celery, kepu.config, reportlab" \
  && test -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc \
  && command -v kepu >/dev/null \
  && ffmpeg -hide_banner -version >/dev/null \
  && ffprobe -hide_banner -version >/dev/null
