"""Runs ON a host (`python -c <this>`): GPU utilisation, memory and power draw via NVML as one
JSON list; an empty list where there is no driver or no nvidia-ml-py. Cheap enough to poll.
Power is None where a board does not report it (cost then falls back to the host's spec)."""

import json

try:
    import pynvml

    pynvml.nvmlInit()
except Exception:  # noqa: BLE001 - no bindings or no driver: no GPUs to report
    print("[]")
else:
    def power_watts(h):
        try:
            return pynvml.nvmlDeviceGetPowerUsage(h) / 1000  # milliwatts
        except pynvml.NVMLError:
            return None

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
                "power_watts": power_watts(h),
            }
        )
    pynvml.nvmlShutdown()
    print(json.dumps(out))
