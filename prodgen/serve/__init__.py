"""The prodgen service: a FastAPI application over the inference library (`prodgen serve`).

- settings.py: what one server is configured with (no global state: `create_app(settings)` builds all of it)
- models.py: the models a server loads, and what `GET /v1/models` says about each
- batching.py: one inference worker per generator, sharing forward passes between concurrent requests
- jobs.py: batch jobs: the job table (SQLAlchemy), the background runner, the result ZIP
- schemas.py: the JSON requests and responses (pydantic), documented in /openapi.json
- limits.py, uploads.py: what a request may ask; uploaded photos checked by content and size
- middleware.py: Prometheus metrics, the API key, the request body limit
- routes.py: the thin endpoints
- static/: the web studio, a page over the API served at / (plain HTML, CSS and JavaScript modules, no build step)
- app.py: the application factory and the JSON errors
"""
