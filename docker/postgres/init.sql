-- Run once by the postgres image on an empty volume: MLflow gets the database named by
-- POSTGRES_DB (mlflow), Prefect gets its own.
CREATE DATABASE prefect;
