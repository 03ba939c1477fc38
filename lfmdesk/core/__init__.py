"""lfmdesk's Qt-free core: everything the window, the CLI and a server stand on.

Importing this package is cheap and does not import MLX. On Linux it preloads an OpenBLAS so
that MLX, when the engine first imports it, runs its float32 matmuls ~30x faster (this only
works before MLX is imported; see ``_backend``).

Typical use::

    from lfmdesk.core import ChatRequest, Engine, load_image, resolve_model, ensure_model

    engine = Engine()
    for event in ensure_model(resolve_model("8bit")):
        ...                                  # DownloadProgress events, then DownloadDone
    engine.load(event.path)
    image = load_image("photo.jpg")
    for event in engine.stream_chat(ChatRequest.single("What is this?", [image])):
        ...                                  # TextDelta..., GenerationStats
"""

import os as _os

from lfmdesk.core.engine._backend import preload_blas as _preload_blas

_preload_blas()
# mlx-vlm imports transformers for its processors only; without PyTorch, transformers prints
# "PyTorch was not found. Models won't be available..." on every run: noise for lfmdesk, which
# never uses PyTorch.
_os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from lfmdesk.core._errors import (  # noqa: E402
    DownloadCancelled,
    DownloadError,
    EngineError,
    FolderNotEmptyError,
    ImageError,
    InputError,
    LfmdeskError,
    ModelError,
    ModelInvalidError,
    ModelNotFoundError,
    SettingsError,
    ToolSpecError,
    one_line,
)
from lfmdesk.core._settings import (  # noqa: E402
    LIVE_MODES,
    LIVE_VISION,
    AppSettings,
    LiveMode,
    LiveSettings,
    LoadedSettings,
    SamplingSettings,
    VisionSettings,
    load_settings,
    open_settings,
    save_settings,
)
from lfmdesk.core.answers._grounding import (  # noqa: E402
    GROUNDING_TEMPLATE,
    Detection,
    DetectionResult,
    grounding_prompt,
    parse_detections,
    split_labels,
)
from lfmdesk.core.answers._tool_specs import load_tool_specs, tool_response_text  # noqa: E402
from lfmdesk.core.answers._tools import ToolCall, ToolCallParse, parse_tool_calls  # noqa: E402
from lfmdesk.core.chat._conversation import DEFAULT_TITLE, Conversation, Turn  # noqa: E402
from lfmdesk.core.chat._store import (  # noqa: E402
    ConversationStore,
    ConversationSummary,
    data_dir,
)
from lfmdesk.core.chat._thread import ChatThread  # noqa: E402
from lfmdesk.core.datasets._annotations import (  # noqa: E402
    MODEL,
    PERSON,
    Box,
    ImageAnnotation,
    add_box,
    apply_detections,
    make_box,
    move_boxes,
    relabel_boxes,
    remove_boxes,
    replace_box,
)
from lfmdesk.core.datasets._batch import (  # noqa: E402
    BatchEvent,
    BatchFinished,
    BatchPlan,
    BatchStarted,
    ImageAnnotated,
    ImageFailed,
    ImageSkipped,
    annotate_project,
    detection_request,
    plan_batch,
    record_detections,
)
from lfmdesk.core.datasets._project import IMAGE_SUFFIXES, Project, oriented_size  # noqa: E402
from lfmdesk.core.datasets.formats._table import (  # noqa: E402
    FORMATS,
    DatasetFormat,
    ExportReport,
    ImportReport,
    boxes_json,
    export_dataset,
    get_format,
    import_dataset,
)
from lfmdesk.core.engine._backend import BackendInfo, backend_info  # noqa: E402
from lfmdesk.core.engine._chat import (  # noqa: E402
    ChatEvent,
    ChatRequest,
    GenerationStats,
    Message,
    Notice,
    TextDelta,
)
from lfmdesk.core.engine._constrained import (  # noqa: E402
    Constraint,
    constraint_for_detection,
    constraint_for_json_schema,
)
from lfmdesk.core.engine._engine import Engine, ModelInfo  # noqa: E402
from lfmdesk.core.engine._tiling import Tile, TilePlan, plan_tiles  # noqa: E402
from lfmdesk.core.images._load import LoadedImage, load_image  # noqa: E402
from lfmdesk.core.live._loop import (  # noqa: E402
    DEFAULT_CAPTION_PROMPT,
    LatestSlot,
    LiveHud,
    LiveResult,
    LiveStats,
    frame_image,
    live_prompt,
    live_request,
    read_live_answer,
)
from lfmdesk.core.live._session import (  # noqa: E402
    ChatEngineLike,
    LiveFinished,
    animation_frames,
    live_session,
)
from lfmdesk.core.models._store import (  # noqa: E402
    CachedModel,
    DownloadDone,
    DownloadProgress,
    ModelRef,
    download,
    ensure_model,
    format_size,
    list_cached,
    remove_cached,
    resolve_model,
    verify_model_dir,
)
from lfmdesk.core.models._variants import DEFAULT_VARIANT_KEY, VARIANTS, Variant, find_variant  # noqa: E402
from lfmdesk.core.process._client import EngineProcess  # noqa: E402
from lfmdesk.core.process._protocol import (  # noqa: E402
    Cancel,
    CancelDownload,
    ChatEventMsg,
    ChatFailed,
    ChatFinished,
    EngineEvent,
    EngineRequest,
    EngineStarted,
    LoadModel,
    ModelFailed,
    ModelLoaded,
    ModelPhase,
    PromptText,
    RenderPrompt,
    ServingState,
    Shutdown,
    StartChat,
    StartServing,
    StopServing,
)

__all__ = [
    "DEFAULT_CAPTION_PROMPT",
    "DEFAULT_TITLE",
    "DEFAULT_VARIANT_KEY",
    "FORMATS",
    "GROUNDING_TEMPLATE",
    "IMAGE_SUFFIXES",
    "LIVE_MODES",
    "LIVE_VISION",
    "MODEL",
    "PERSON",
    "VARIANTS",
    "AppSettings",
    "BackendInfo",
    "BatchEvent",
    "BatchFinished",
    "BatchPlan",
    "BatchStarted",
    "Box",
    "CachedModel",
    "Cancel",
    "CancelDownload",
    "ChatEngineLike",
    "ChatEvent",
    "ChatEventMsg",
    "ChatFailed",
    "ChatFinished",
    "ChatRequest",
    "ChatThread",
    "Constraint",
    "Conversation",
    "ConversationStore",
    "ConversationSummary",
    "DatasetFormat",
    "Detection",
    "DetectionResult",
    "DownloadCancelled",
    "DownloadDone",
    "DownloadError",
    "DownloadProgress",
    "Engine",
    "EngineError",
    "EngineEvent",
    "EngineProcess",
    "EngineRequest",
    "EngineStarted",
    "ExportReport",
    "FolderNotEmptyError",
    "GenerationStats",
    "ImageAnnotated",
    "ImageAnnotation",
    "ImageError",
    "ImageFailed",
    "ImageSkipped",
    "ImportReport",
    "InputError",
    "LatestSlot",
    "LfmdeskError",
    "LiveFinished",
    "LiveHud",
    "LiveMode",
    "LiveResult",
    "LiveSettings",
    "LiveStats",
    "LoadModel",
    "LoadedImage",
    "LoadedSettings",
    "Message",
    "ModelError",
    "ModelFailed",
    "ModelInfo",
    "ModelInvalidError",
    "ModelLoaded",
    "ModelNotFoundError",
    "ModelPhase",
    "ModelRef",
    "Notice",
    "Project",
    "PromptText",
    "RenderPrompt",
    "SamplingSettings",
    "ServingState",
    "SettingsError",
    "Shutdown",
    "StartChat",
    "StartServing",
    "StopServing",
    "TextDelta",
    "Tile",
    "TilePlan",
    "ToolCall",
    "ToolCallParse",
    "ToolSpecError",
    "Turn",
    "Variant",
    "VisionSettings",
    "add_box",
    "animation_frames",
    "annotate_project",
    "apply_detections",
    "backend_info",
    "boxes_json",
    "constraint_for_detection",
    "constraint_for_json_schema",
    "data_dir",
    "detection_request",
    "download",
    "ensure_model",
    "export_dataset",
    "find_variant",
    "format_size",
    "frame_image",
    "get_format",
    "grounding_prompt",
    "import_dataset",
    "list_cached",
    "live_prompt",
    "live_request",
    "live_session",
    "load_image",
    "load_settings",
    "load_tool_specs",
    "make_box",
    "move_boxes",
    "one_line",
    "open_settings",
    "oriented_size",
    "parse_detections",
    "parse_tool_calls",
    "plan_batch",
    "plan_tiles",
    "read_live_answer",
    "record_detections",
    "relabel_boxes",
    "remove_boxes",
    "remove_cached",
    "replace_box",
    "resolve_model",
    "save_settings",
    "split_labels",
    "tool_response_text",
    "verify_model_dir",
]
