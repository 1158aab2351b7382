# ISO-Bench task image for vLLM at one base commit (rendered by pytest_isobench.sandbox.images).
# {{base_image}} needs CUDA; {{python}} is installed when it is missing. The build context holds the
# base tree as src.tar (made by the harness from its own clone: nothing later than the base commit).
# The repository is installed the way vLLM supports at that commit: editable with the precompiled
# per-commit wheel when one is published (VLLM_USE_PRECOMPILED), a source build of the CUDA
# extensions otherwise. The tree is committed before the build, so the harness can tell build outputs
# (untracked files) from sources.
FROM {{base_image}}
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 LANG=C.UTF-8
RUN if ! command -v {{python}} >/dev/null || ! command -v git >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends \
            git ca-certificates curl build-essential {{python}} {{python}}-dev {{python}}-venv \
        && rm -rf /var/lib/apt/lists/*; fi \
    && {{python}} -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
ADD src.tar /opt/src/
RUN git -C /opt/src init -q -b main \
    && git -C /opt/src -c user.name=ISO-Bench -c user.email=isobench@localhost add --all --force \
    && git -C /opt/src -c user.name=ISO-Bench -c user.email=isobench@localhost commit -q -m "Initial state"
WORKDIR /opt/src
RUN pip install --upgrade pip setuptools wheel \
    && if curl -fsI "{{wheel_url}}" >/dev/null; then \
        echo "isobench: precompiled wheel {{wheel_url}}"; \
        VLLM_USE_PRECOMPILED=1 VLLM_PRECOMPILED_WHEEL_LOCATION="{{wheel_url}}" pip install -e .; \
    else \
        echo "isobench: no per-commit wheel, building from source"; \
        if [ -f requirements-build.txt ]; then pip install -r requirements-build.txt; fi; \
        MAX_JOBS={{max_jobs}} TORCH_CUDA_ARCH_LIST="{{cuda_arch}}" pip install --no-build-isolation -e .; \
    fi
# the benchmark's own dependencies
RUN pip install {{bench_deps}}
LABEL isobench.owner=pytest-isobench isobench.kind=task isobench.repo=vllm \
      isobench.base_commit={{base_commit}} isobench.base_image="{{base_image}}" \
      isobench.src=/opt/src \
      isobench.rebuild="cd /opt/src && MAX_JOBS={{max_jobs}} TORCH_CUDA_ARCH_LIST={{cuda_arch}} pip install --no-build-isolation -e ."
