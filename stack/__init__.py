"""The local stack behind `make up` / `make down` / `make status`: an MLflow server, a Prefect
server and process worker, and the scoring service, on 127.0.0.1, with logs and pid files in
`.run/`. Run it with `python -m stack up|down|status`."""
