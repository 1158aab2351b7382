# ISO-Bench task image for SGLang at one base commit (rendered by pytest_isobench.sandbox.images).
# SGLang's Python package lives in python/ and is installed editable with the released sgl-kernel and
# flashinfer wheels it pins; the sgl-kernel CUDA sources are built only when a variant changes them.
FROM {{base_image}}
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 LANG=C.UTF-8
RUN if ! command -v {{python}} >/dev/null || ! command -v git >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends \
            git ca-certificates curl build-essential libnuma1 {{python}} {{python}}-dev {{python}}-venv \
        && rm -rf /var/lib/apt/lists/*; fi \
    && {{python}} -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
RUN git init -q /opt/src && cd /opt/src \
    && git fetch -q --depth 1 {{repo_url}} {{base_commit}} && git checkout -q FETCH_HEAD
WORKDIR /opt/src
RUN pip install --upgrade pip setuptools wheel \
    && pip install -e "python[all]" --find-links {{flashinfer_index}}
RUN pip install {{bench_deps}}
RUN rm -rf /opt/src/.git && git -C /opt/src init -q -b main \
    && git -C /opt/src -c user.name=ISO-Bench -c user.email=isobench@localhost add --all --force \
    && git -C /opt/src -c user.name=ISO-Bench -c user.email=isobench@localhost commit -q -m "Initial state"
LABEL isobench.owner=pytest-isobench isobench.kind=task isobench.repo=sglang \
      isobench.base_commit={{base_commit}} isobench.base_image="{{base_image}}"
