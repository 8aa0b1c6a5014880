"""A fake Kubeflow Pipelines v2beta1 REST API whose contract is KFP's own generated models.

Every request body and filter is checked against the ``kfp_server_api`` models (the OpenAPI
definitions KFP publishes): unknown fields, wrong JSON types and enum values outside the model's
``allowable_values`` are answered 400, as the real server's protojson decoding does. Bodies are
then deserialized with ``kfp_server_api.ApiClient().deserialize`` into the models, and every
response is serialized from those models with their ``attribute_map`` (snake_case, as KFP's
gateway answers). On top sit the semantic checks of KFP's API server that the client relies on:
unique names (409), existing references (404), parameters declared by the pipeline spec, the
recurring-run limits, the ``plugins_input.mlflow`` schema, and pipeline specs that parse strictly
into ``PipelineSpec``.

The fake also drives runs through a scripted life (PENDING → RUNNING → SUCCEEDED/FAILED with
``run_details.task_details``), drops connections or answers 503 for the next N calls, and demands
a bearer token when one is set. It serves a one-endpoint MLflow stand-in
(``experiments/get-by-name``) for the run-description link.
"""

from __future__ import annotations

import email.parser
import itertools
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kfp_server_api
import yaml
from kfp_server_api import models as m

_API = "/apis/v2beta1"
_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 503: 14}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Response:
    """What ``ApiClient.deserialize`` reads: ``.data``."""

    def __init__(self, data: Any) -> None:
        self.data = json.dumps(data)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def check_model(data: Any, type_name: str, where: str = "body") -> None:
    """Reject what KFP's JSON decoding rejects for ``type_name`` (an openapi type string)."""
    if data is None:
        return
    if type_name.startswith("list["):
        if not isinstance(data, list):
            raise HttpError(400, f"{where}: expected a list")
        for i, item in enumerate(data):
            check_model(item, type_name[5:-1], f"{where}[{i}]")
        return
    if type_name.startswith("dict("):
        if not isinstance(data, dict):
            raise HttpError(400, f"{where}: expected an object")
        value_type = re.match(r"dict\(([^,]*), (.*)\)", type_name).group(2)  # type: ignore[union-attr]
        for key, item in data.items():
            check_model(item, value_type, f"{where}.{key}")
        return
    simple = {"str": str, "bool": bool, "datetime": str, "date": str}
    if type_name in simple:
        if not isinstance(data, simple[type_name]):
            raise HttpError(400, f"{where}: expected {type_name}, got {type(data).__name__}")
        return
    if type_name in ("int", "float"):
        # int64 travels as a JSON string; protojson accepts numbers and numeric strings.
        ok = isinstance(data, int | float) and not isinstance(data, bool)
        if isinstance(data, str):
            try:
                float(data)
                ok = True
            except ValueError:
                ok = False
        if not ok:
            raise HttpError(400, f"{where}: expected a number, got {data!r}")
        return
    if type_name == "object":
        return
    klass = getattr(m, type_name)
    allowed = getattr(klass, "allowable_values", None)
    if allowed is not None and not klass.openapi_types:
        if data not in allowed:
            raise HttpError(400, f"{where}: invalid value {data!r} for enum {type_name}")
        return
    if not isinstance(data, dict):
        raise HttpError(400, f"{where}: expected an object for {type_name}")
    by_json = {json_key: attr for attr, json_key in klass.attribute_map.items()}
    for key, value in data.items():
        attr = by_json.get(key) or by_json.get(_snake(key))
        if attr is None:
            raise HttpError(400, f"{where}: unknown field {key!r} in {type_name}")
        check_model(value, klass.openapi_types[attr], f"{where}.{key}")


def _normalize(data: Any) -> Any:
    """lowerCamel keys → the models' snake_case keys (protojson accepts both spellings)."""
    if isinstance(data, dict):
        return {_snake(k): _normalize(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_normalize(v) for v in data]
    return data


def parse_model(data: Any, type_name: str) -> Any:
    check_model(data, type_name)
    try:
        return kfp_server_api.ApiClient().deserialize(_Response(_normalize(data)), type_name)
    except ValueError as error:  # the models' client-side validation
        raise HttpError(400, str(error)) from error


def to_json(model: Any) -> Any:
    return kfp_server_api.ApiClient().sanitize_for_serialization(model)


_LIST_RESPONSES = {
    "experiments": m.V2beta1ListExperimentsResponse,
    "pipelines": m.V2beta1ListPipelinesResponse,
    "pipeline_versions": m.V2beta1ListPipelineVersionsResponse,
    "runs": m.V2beta1ListRunsResponse,
    "recurring_runs": m.V2beta1ListRecurringRunsResponse,
}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def validate_spec(text: str) -> dict[str, Any]:
    """The pipeline spec of an uploaded package, parsed strictly as KFP's server does."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
        json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
        if len(docs) > 1:
            json_format.ParseDict(docs[1], pipeline_spec_pb2.PlatformSpec())
    except Exception as error:
        raise HttpError(400, f"invalid pipeline spec: {error}") from error
    return docs[0]


class FakeKfpApi:
    """The fake server. Use as a context manager; ``url`` is its base URL."""

    def __init__(self, *, token: str | None = None, multi_user: bool = False) -> None:
        self.token = token
        self.multi_user = multi_user
        self.lock = threading.RLock()
        self.experiments: dict[str, Any] = {}
        self.pipelines: dict[str, Any] = {}
        self.versions: dict[str, Any] = {}
        self.specs: dict[str, dict[str, Any]] = {}  # pipeline_version_id → spec
        self.runs: dict[str, Any] = {}
        self.recurring: dict[str, Any] = {}
        self.mlflow_experiments: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.run_script: list[tuple[str, dict[str, str]]] = [("SUCCEEDED", {})]
        self._progress: dict[str, int] = {}
        self._faults: list[tuple[str, int]] = []  # ("drop" | str(status), remaining)
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle and controls ---------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeKfpApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def drop_next(self, count: int) -> None:
        """Close the next ``count`` connections without answering."""
        with self.lock:
            self._faults.append(("drop", count))

    def fail_next(self, count: int, status: int = 503) -> None:
        with self.lock:
            self._faults.append((str(status), count))

    @contextmanager
    def down(self) -> Iterator[None]:
        """Answer nothing while inside."""
        self.drop_next(10**9)
        try:
            yield
        finally:
            with self.lock:
                self._faults.clear()

    def _take_fault(self) -> str | None:
        with self.lock:
            while self._faults:
                kind, left = self._faults[0]
                if left <= 0:
                    self._faults.pop(0)
                    continue
                self._faults[0] = (kind, left - 1)
                return kind
        return None

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}-{uuid.uuid4().hex[:8]}"

    # --- HTTP plumbing ------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else ~40 ms per response (Nagle × delayed ACK)

            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def _dispatch(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = fake._take_fault()
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                try:
                    if fault is not None:
                        raise HttpError(int(fault), "service unavailable")
                    status, payload = fake.handle(method, self.path, dict(self.headers), body)
                except HttpError as error:
                    code = _GRPC.get(error.status, 2)
                    status = error.status
                    payload = {
                        "error": error.message,
                        "code": code,
                        "message": error.message,
                        "details": [],
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

        return Handler

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.calls.append((method, raw_path))
        if path.startswith("/api/2.0/mlflow/"):
            return self._mlflow(path, query)
        if self.token is not None:
            sent = {k.lower(): v for k, v in headers.items()}.get("authorization")
            if sent != f"Bearer {self.token}":
                raise HttpError(401, "Unauthenticated: missing or invalid bearer token")
        if not path.startswith(_API):
            raise HttpError(404, f"no route {path}")
        route = path[len(_API) :]
        content_type = headers.get("Content-Type") or headers.get("content-type") or ""
        if content_type.startswith("application/json") and body:
            try:
                payload = json.loads(body)
            except ValueError as error:
                raise HttpError(400, f"body is not JSON: {error}") from error
        else:
            payload = None
        with self.lock:
            return self._route(method, route, query, payload, body, content_type)

    def _route(
        self, method: str, route: str, q: dict[str, str], payload: Any, body: bytes, ctype: str
    ) -> tuple[int, Any]:
        table = [
            ("GET", r"/healthz", self._healthz),
            ("GET", r"/experiments", self._list_experiments),
            ("POST", r"/experiments", self._create_experiment),
            ("GET", r"/experiments/(?P<id>[^/:]+)", self._get_experiment),
            ("GET", r"/pipelines", self._list_pipelines),
            ("POST", r"/pipelines", self._create_pipeline),
            ("POST", r"/pipelines/upload", self._upload),
            ("POST", r"/pipelines/upload_version", self._upload_version),
            ("GET", r"/pipelines/(?P<id>[^/]+)/versions", self._list_versions),
            ("GET", r"/pipelines/(?P<id>[^/]+)/versions/(?P<vid>[^/]+)", self._get_version),
            ("GET", r"/runs", self._list_runs),
            ("POST", r"/runs", self._create_run),
            ("GET", r"/runs/(?P<id>[^/:]+)", self._get_run),
            ("GET", r"/recurringruns", self._list_recurring),
            ("POST", r"/recurringruns", self._create_recurring),
            ("GET", r"/recurringruns/(?P<id>[^/:]+)", self._get_recurring),
            ("DELETE", r"/recurringruns/(?P<id>[^/:]+)", self._delete_recurring),
            ("POST", r"/recurringruns/(?P<id>[^/:]+):(?P<verb>enable|disable)", self._toggle),
        ]
        for verb, pattern, fn in table:
            match = re.fullmatch(pattern, route)
            if verb == method and match:
                request = {"query": q, "json": payload, "body": body, "ctype": ctype}
                return 200, fn(request, **match.groupdict())
        raise HttpError(404, f"no route {method} {route}")

    # --- helpers ------------------------------------------------------------------------------
    def _filtered(self, items: list[Any], q: dict[str, str], field: str) -> dict[str, Any]:
        if "filter" in q:
            flt = parse_model(json.loads(q["filter"]), "V2beta1Filter")
            for p in flt.predicates or []:
                if p.key not in ("display_name", "name"):
                    raise HttpError(400, f"invalid filter key {p.key!r}")
                if p.operation != "EQUALS":
                    raise HttpError(400, f"unsupported filter operation {p.operation}")
                items = [i for i in items if getattr(i, p.key, None) == p.string_value]
        size = int(q.get("page_size") or 20)
        start = int(q.get("page_token") or 0)
        token = str(start + size) if start + size < len(items) else None
        # The list responses' JSON names come from the models (``recurringRuns`` is camelCase).
        response = _LIST_RESPONSES[field](
            **{field: items[start : start + size]}, total_size=len(items), next_page_token=token
        )
        return to_json(response)

    def _in_namespace(self, items: list[Any], q: dict[str, str]) -> list[Any]:
        ns = q.get("namespace")
        return [i for i in items if not ns or (getattr(i, "namespace", None) or "") == ns]

    # --- handlers -----------------------------------------------------------------------------
    def _healthz(self, r: dict[str, Any]) -> Any:
        return to_json(
            m.V2beta1GetHealthzResponse(multi_user=self.multi_user, pipeline_store="database")
        )

    def _list_experiments(self, r: dict[str, Any]) -> Any:
        items = self._in_namespace(list(self.experiments.values()), r["query"])
        return self._filtered(items, r["query"], "experiments")

    def _create_experiment(self, r: dict[str, Any]) -> Any:
        exp = parse_model(r["json"], "V2beta1Experiment")
        if not exp.display_name:
            raise HttpError(400, "experiment display_name is empty")
        for other in self.experiments.values():
            if other.display_name == exp.display_name and other.namespace == exp.namespace:
                raise HttpError(409, f"experiment {exp.display_name} already exists")
        exp.experiment_id = self._id("exp")
        exp.created_at = _now()
        exp.storage_state = "AVAILABLE"
        self.experiments[exp.experiment_id] = exp
        return to_json(exp)

    def _get_experiment(self, r: dict[str, Any], id: str) -> Any:
        if id not in self.experiments:
            raise HttpError(404, f"experiment {id} not found")
        return to_json(self.experiments[id])

    def _list_pipelines(self, r: dict[str, Any]) -> Any:
        items = self._in_namespace(list(self.pipelines.values()), r["query"])
        return self._filtered(items, r["query"], "pipelines")

    def _add_pipeline(self, pipeline: Any) -> Any:
        if not (pipeline.display_name or pipeline.name):
            raise HttpError(400, "pipeline name is empty")
        pipeline.name = pipeline.name or pipeline.display_name
        pipeline.display_name = pipeline.display_name or pipeline.name
        if any(p.name == pipeline.name for p in self.pipelines.values()):
            raise HttpError(409, f"pipeline {pipeline.name} already exists")
        pipeline.pipeline_id = self._id("pipeline")
        pipeline.created_at = _now()
        self.pipelines[pipeline.pipeline_id] = pipeline
        return pipeline

    def _create_pipeline(self, r: dict[str, Any]) -> Any:
        return to_json(self._add_pipeline(parse_model(r["json"], "V2beta1Pipeline")))

    def _uploaded_spec(self, r: dict[str, Any]) -> dict[str, Any]:
        if "multipart/form-data" not in r["ctype"]:
            raise HttpError(400, "upload expects multipart/form-data")
        message = email.parser.BytesParser().parsebytes(
            f"Content-Type: {r['ctype']}\r\n\r\n".encode() + r["body"]
        )
        for part in message.walk():
            if part.get_param("name", header="content-disposition") == "uploadfile":
                return validate_spec(part.get_payload(decode=True).decode())
        raise HttpError(400, "no uploadfile in the multipart body")

    def _add_version(self, pipeline_id: str, name: str, desc: str | None, spec: Any) -> Any:
        if pipeline_id not in self.pipelines:
            raise HttpError(404, f"pipeline {pipeline_id} not found")
        if any(v.pipeline_id == pipeline_id and v.name == name for v in self.versions.values()):
            raise HttpError(409, f"pipeline version {name} already exists")
        version = m.V2beta1PipelineVersion(
            pipeline_id=pipeline_id,
            pipeline_version_id=self._id("version"),
            name=name,
            display_name=name,
            description=desc,
            created_at=_now(),
            pipeline_spec=spec,
        )
        self.versions[version.pipeline_version_id] = version
        self.specs[version.pipeline_version_id] = spec
        return version

    def _upload(self, r: dict[str, Any]) -> Any:
        q = r["query"]
        spec = self._uploaded_spec(r)
        name = q.get("name") or q.get("display_name") or spec["pipelineInfo"]["name"]
        pipeline = self._add_pipeline(
            m.V2beta1Pipeline(
                name=name,
                display_name=q.get("display_name") or name,
                description=q.get("description"),
                namespace=q.get("namespace"),
            )
        )
        # KFP names a package's first version after the pipeline.
        self._add_version(pipeline.pipeline_id, name, q.get("description"), spec)
        return to_json(pipeline)

    def _upload_version(self, r: dict[str, Any]) -> Any:
        q = r["query"]
        if not q.get("pipelineid"):
            raise HttpError(400, "pipelineid is required")
        spec = self._uploaded_spec(r)
        name = q.get("name") or q.get("display_name")
        if not name:
            raise HttpError(400, "pipeline version name is empty")
        return to_json(self._add_version(q["pipelineid"], name, q.get("description"), spec))

    def _list_versions(self, r: dict[str, Any], id: str) -> Any:
        if id not in self.pipelines:
            raise HttpError(404, f"pipeline {id} not found")
        items = [v for v in self.versions.values() if v.pipeline_id == id]
        return self._filtered(items, r["query"], "pipeline_versions")

    def _get_version(self, r: dict[str, Any], id: str, vid: str) -> Any:
        version = self.versions.get(vid)
        if version is None or version.pipeline_id != id:
            raise HttpError(404, f"pipeline version {vid} not found")
        return to_json(version)

    def _check_template(self, obj: Any) -> dict[str, Any]:
        """Experiment, version and parameters of a run or recurring run, as KFP checks them."""
        if obj.experiment_id and obj.experiment_id not in self.experiments:
            raise HttpError(404, f"experiment {obj.experiment_id} not found")
        ref = obj.pipeline_version_reference
        if ref is None and obj.pipeline_spec is None:
            raise HttpError(400, "a pipeline spec or a pipeline version reference is required")
        spec = obj.pipeline_spec
        if ref is not None:
            version = self.versions.get(ref.pipeline_version_id or "")
            if version is None or version.pipeline_id != ref.pipeline_id:
                raise HttpError(404, f"pipeline version {ref.pipeline_version_id} not found")
            spec = self.specs[version.pipeline_version_id]
        declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
        given = (obj.runtime_config.parameters or {}) if obj.runtime_config else {}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise HttpError(400, f"unrecognized input parameters: {', '.join(unknown)}")
        plugins = obj.plugins_input or {}
        if "mlflow" in plugins:
            mlflow = plugins["mlflow"]
            allowed = {"experiment_name", "experiment_id", "disabled"}
            if not isinstance(mlflow, dict) or set(mlflow) - allowed:
                raise HttpError(400, f"failed to resolve MLflow plugin input: {mlflow!r}")
        return spec

    def _create_run(self, r: dict[str, Any]) -> Any:
        run = parse_model(r["json"], "V2beta1Run")
        if not run.display_name:
            raise HttpError(400, "run display_name is empty")
        self._check_template(run)
        if not run.experiment_id:
            run.experiment_id = next(iter(self.experiments), None)
        run.run_id = str(uuid.uuid4())
        run.created_at = _now()
        run.state = "PENDING"
        run.storage_state = "AVAILABLE"
        if run.plugins_input and "mlflow" in run.plugins_input:
            name = run.plugins_input["mlflow"].get("experiment_name", "KFP-Default")
            url = m.V2beta1MetadataValue(
                value=f"http://mlflow.example/#/experiments/1/runs/{run.run_id}"
            )
            run.plugins_output = {
                "mlflow": m.V2beta1PluginOutput(
                    entries={"experiment_name": m.V2beta1MetadataValue(value=name), "run_url": url},
                    state="PLUGIN_SUCCEEDED",
                )
            }
        self.runs[run.run_id] = run
        self._progress[run.run_id] = 0
        return to_json(run)

    def _advance(self, run: Any) -> None:
        step = self._progress.get(run.run_id, 0)
        if step < len(self.run_script):
            state, tasks = self.run_script[step]
            self._progress[run.run_id] = step + 1
            run.state = state
            details = [
                m.V2beta1PipelineTaskDetail(
                    run_id=run.run_id, task_id="root", display_name=run.display_name, state=state
                )
            ]
            for name, task_state in tasks.items():
                error = (
                    m.GoogleRpcStatus(code=2, message=f"{name}: exit status 1")
                    if task_state == "FAILED"
                    else None
                )
                details.append(
                    m.V2beta1PipelineTaskDetail(
                        run_id=run.run_id,
                        task_id=f"task-{name}",
                        display_name=name,
                        state=task_state,
                        create_time=_now(),
                        start_time=_now(),
                        error=error,
                    )
                )
            run.run_details = m.V2beta1RunDetails(task_details=details)
            if state in ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"):
                run.finished_at = _now()

    def _get_run(self, r: dict[str, Any], id: str) -> Any:
        run = self.runs.get(id)
        if run is None:
            raise HttpError(404, f"run {id} not found")
        self._advance(run)
        return to_json(run)

    def _list_runs(self, r: dict[str, Any]) -> Any:
        items = list(self.runs.values())
        if r["query"].get("experiment_id"):
            items = [i for i in items if i.experiment_id == r["query"]["experiment_id"]]
        return self._filtered(items, r["query"], "runs")

    def _create_recurring(self, r: dict[str, Any]) -> Any:
        job = parse_model(r["json"], "V2beta1RecurringRun")
        if not job.display_name:
            raise HttpError(400, "recurring run display_name is empty")
        self._check_template(job)
        if job.trigger is None or (
            job.trigger.cron_schedule is None and job.trigger.periodic_schedule is None
        ):
            raise HttpError(400, "a trigger (cron or periodic) is required")
        if not 1 <= int(job.max_concurrency or 0) <= 10:
            raise HttpError(400, "The max concurrency of the job is out of range. Support 1-10.")
        cron = job.trigger.cron_schedule.cron if job.trigger.cron_schedule else None
        if cron is not None and not cron.startswith("@") and len(cron.split()) != 6:
            raise HttpError(400, f"invalid cron expression {cron!r}: expected 6 fields")
        if job.mode not in ("ENABLE", "DISABLE"):
            raise HttpError(400, "mode must be ENABLE or DISABLE")
        job.recurring_run_id = self._id("recurring")
        job.created_at = job.updated_at = _now()
        job.status = "ENABLED" if job.mode == "ENABLE" else "DISABLED"
        self.recurring[job.recurring_run_id] = job
        return to_json(job)

    def _list_recurring(self, r: dict[str, Any]) -> Any:
        q = r["query"]
        items = self._in_namespace(list(self.recurring.values()), q)
        if q.get("experiment_id"):
            items = [i for i in items if i.experiment_id == q["experiment_id"]]
        return self._filtered(items, q, "recurring_runs")

    def _job(self, id: str) -> Any:
        if id not in self.recurring:
            raise HttpError(404, f"recurring run {id} not found")
        return self.recurring[id]

    def _get_recurring(self, r: dict[str, Any], id: str) -> Any:
        return to_json(self._job(id))

    def _toggle(self, r: dict[str, Any], id: str, verb: str) -> Any:
        job = self._job(id)
        job.mode = "ENABLE" if verb == "enable" else "DISABLE"
        job.status = "ENABLED" if verb == "enable" else "DISABLED"
        job.updated_at = _now()
        return {}

    def _delete_recurring(self, r: dict[str, Any], id: str) -> Any:
        self._job(id)
        del self.recurring[id]
        return {}

    # --- MLflow stand-in ----------------------------------------------------------------------
    def _mlflow(self, path: str, q: dict[str, str]) -> tuple[int, Any]:
        if path != "/api/2.0/mlflow/experiments/get-by-name":
            raise HttpError(404, f"no route {path}")
        name = q.get("experiment_name", "")
        if name not in self.mlflow_experiments:
            raise HttpError(404, f"RESOURCE_DOES_NOT_EXIST: experiment {name!r}")
        return 200, {"experiment": {"experiment_id": self.mlflow_experiments[name], "name": name}}
