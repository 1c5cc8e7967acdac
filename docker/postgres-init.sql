-- Two databases on one server: Airflow's metadata and PolicyWatch's version store.
CREATE USER airflow WITH PASSWORD 'airflow';
CREATE DATABASE airflow OWNER airflow;
CREATE USER policywatch WITH PASSWORD 'policywatch';
CREATE DATABASE policywatch OWNER policywatch;
