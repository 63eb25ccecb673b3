"""Runs ON a host (`python -c <this>`): GPU utilisation and memory via NVML as one JSON list;
an empty list where there is no driver or no nvidia-ml-py. Cheap enough to poll."""

import json

try:
    import pynvml

    pynvml.nvmlInit()
except Exception:  # noqa: BLE001 - no bindings or no driver: no GPUs to report
    print("[]")
else:
    out = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        out.append(
            {
                "index": i,
                "utilization_percent": pynvml.nvmlDeviceGetUtilizationRates(h).gpu,
                "memory_used_bytes": int(mem.used),
                "memory_total_bytes": int(mem.total),
            }
        )
    pynvml.nvmlShutdown()
    print(json.dumps(out))
