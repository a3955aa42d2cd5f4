# One image for the Airflow services and the sharehub API.
FROM apache/airflow:3.3.2-python3.11
USER root
COPY --chown=airflow:root . /opt/sharehub
USER airflow
# Install the locked dependency set (the lock pins apache-airflow 3.3.2, as the base image).
RUN pip install --no-cache-dir "uv==0.13.9" \
 && cd /opt/sharehub \
 && uv export --frozen --no-dev --no-hashes --no-emit-project -o /tmp/requirements.txt \
 && uv pip install --no-cache --python "$(command -v python)" -r /tmp/requirements.txt \
 && uv pip install --no-cache --python "$(command -v python)" --no-deps /opt/sharehub
ENV SHAREHUB_CATALOGUE_DIR=/opt/sharehub/catalogue
