"""The pinned environment of every rules_tfjs action (conversion and migration)."""

# Fixed action environment: with --incompatible_strict_action_env nothing from the
# user's shell leaks in, and these pin everything that could change output bytes.
ACTION_ENV = {
    "CUDA_VISIBLE_DEVICES": "-1",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONNOUSERSITE": "1",
    "SOURCE_DATE_EPOCH": "315532800",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_DETERMINISTIC_OPS": "1",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TZ": "UTC",
}
