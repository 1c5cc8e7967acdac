# The production image: the official Airflow image of the version we pin, with PolicyWatch installed.
FROM apache/airflow:3.3.2-python3.11

USER root
COPY --chown=airflow:0 . /opt/policywatch
USER airflow
RUN pip install --no-cache-dir "/opt/policywatch[airflow]" "apache-airflow==3.3.2" "apache-airflow-providers-celery"
ENV POLICYWATCH_CONFIG=/opt/policywatch/config/sources.yaml \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/policywatch/dags
