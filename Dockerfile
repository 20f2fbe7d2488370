# One Dockerfile, four images from the same code and CLI:
#   --target slim      : iotml-slim      — bridge, simulator, egress, dashboard, topic admin (no TensorFlow)
#   --target processor : iotml-processor — the stream processor (NumPy inference, no TensorFlow)
#   --target batch     : iotml-batch     — archive, the Dask scheduler and workers, `batch --engine dask`
#                                          (NumPy inference, no TensorFlow)
#   --target full      : iotml           — trainer, evaluate, retrain, local batch (TensorFlow CPU)
# Behind a TLS-intercepting proxy, pass its CA certificates (PEM text) for the build only:
#   docker compose build --build-arg EXTRA_CA_CERTS="$(cat corp-ca.pem)"
# The build context holds only what .dockerignore lets in: pyproject.toml, README.md, the
# five packages and the pip wrapper (deploy/docker/pip-ca).

# The project as a wheel, built apart so that the images get no source tree or build files.
FROM python:3.11-slim AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
ARG EXTRA_CA_CERTS=""
COPY deploy/docker/pip-ca /usr/local/bin/
COPY pyproject.toml README.md /src/
COPY iotml /src/iotml
COPY bridge /src/bridge
COPY processor /src/processor
COPY models /src/models
COPY dashboard /src/dashboard
RUN pip-ca wheel --quiet --no-deps --wheel-dir /wheels /src

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
COPY deploy/docker/pip-ca /usr/local/bin/
RUN useradd --create-home --uid 10001 iotml
# The dependencies are installed from pyproject.toml alone (an empty package stands in for
# the code), so a change to the code rebuilds only the small layer of the wheel.
COPY pyproject.toml /tmp/deps/
WORKDIR /tmp/deps
RUN mkdir iotml && touch iotml/__init__.py README.md

FROM base AS slim
ARG EXTRA_CA_CERTS=""
RUN pip-ca install --quiet ".[bridge,dashboard]" && pip uninstall --quiet --yes iotml && rm -rf /tmp/deps
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --quiet --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
WORKDIR /home/iotml
USER iotml
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
ENTRYPOINT ["iotml"]
CMD ["--help"]

FROM base AS processor
ARG EXTRA_CA_CERTS=""
RUN pip-ca install --quiet ".[processor]" && pip uninstall --quiet --yes iotml && rm -rf /tmp/deps
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --quiet --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
RUN mkdir -p /models /state && chown iotml:iotml /models /state
WORKDIR /home/iotml
USER iotml
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
ENTRYPOINT ["iotml"]
CMD ["--help"]

# The Dask scheduler and workers need the very versions of dask and distributed that the
# client has: all three run this one image. Workers replay with the NumPy form of a model.
FROM base AS batch
ARG EXTRA_CA_CERTS=""
RUN pip-ca install --quiet ".[dask]" && pip uninstall --quiet --yes iotml && rm -rf /tmp/deps
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --quiet --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
RUN mkdir -p /archive /models && chown iotml:iotml /archive /models
# Arrow on the C heap, whose free pages a replay task returns after each chunk, and no
# statistical profiler in the workers: either made a worker's memory creep with the
# archive (models/distributed/_memory.py).
ENV ARROW_DEFAULT_MEMORY_POOL=system \
    DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False
WORKDIR /home/iotml
USER iotml
# 8786: the scheduler, 8787: its dashboard. No image health check: the archive serves no
# HTTP, and the scheduler and the workers answer /health on their own ports (compose).
EXPOSE 8786 8787
ENTRYPOINT ["iotml"]
CMD ["--help"]

FROM base AS full
ARG EXTRA_CA_CERTS=""
RUN pip-ca install --quiet ".[bridge,models,processor,plot]" && pip uninstall --quiet --yes iotml && rm -rf /tmp/deps
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --quiet --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
RUN mkdir -p /models /state && chown iotml:iotml /models /state
WORKDIR /home/iotml
USER iotml
# Matplotlib builds its font cache on first import; build it once here, not in every replica.
RUN python -c "import matplotlib.font_manager"
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
ENTRYPOINT ["iotml"]
CMD ["--help"]
