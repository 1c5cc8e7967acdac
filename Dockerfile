# The production image: the official Airflow image of the version we pin, with PolicyWatch installed.
FROM apache/airflow:3.3.2-python3.11

USER root
COPY --chown=airflow:0 . /opt/policywatch
USER airflow
# The celery extra pins what the CeleryExecutor needs (celery < 5.7 for provider 3.26, psycopg2 and
# asyncpg for the PostgreSQL metadata database); constraints.txt holds every version to the set CI
# tested together (apache-airflow 3.3.2, the image's own, included).
RUN pip install --no-cache-dir -c /opt/policywatch/constraints.txt "/opt/policywatch[airflow,celery]"
ENV POLICYWATCH_CONFIG=/opt/policywatch/config/sources.yaml \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/policywatch/dags
