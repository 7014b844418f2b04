# syntax=docker/dockerfile:1
# One image, two flavours of torch:
#   docker build -t reelserve:cpu .                          (API replicas, CPU workers)
#   docker build --build-arg TORCH=cuda -t reelserve:cuda .  (GPU workers)
# The CUDA flavour installs CUDA torch first; `pip install .` then keeps it (torch>=2.6).
ARG PYTHON_VERSION=3.12
ARG TORCH=cpu

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 reelserve
WORKDIR /app

FROM base AS torch-cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install "torch>=2.6" --index-url "${TORCH_CPU_INDEX}"

FROM base AS torch-cuda
# Wheels that bundle the CUDA runtime; the host needs the NVIDIA driver and container toolkit.
ARG TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu128
RUN pip install "torch>=2.6" --index-url "${TORCH_CUDA_INDEX}"

FROM torch-${TORCH} AS app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf /app/src /app/build
COPY deploy/create_bucket.py /opt/reelserve/create_bucket.py
ENV REELSERVE_DATA_DIR=/data \
    REELSERVE_MODELS_PATH=/models
RUN mkdir -p /data /models && chown reelserve:reelserve /data /models
USER reelserve
VOLUME ["/data"]
EXPOSE 8000
ENTRYPOINT ["reelserve"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
