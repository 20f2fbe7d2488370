# One Dockerfile, two images from the same code and CLI:
#   --target slim : bridge, simulator, topics (no TensorFlow; ~10x smaller)
#   --target full : processor, trainer, batch, archive (TensorFlow CPU)
# The NAB data in ../shared is never copied in (see .dockerignore).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 iotml
WORKDIR /app
COPY pyproject.toml README.md ./
COPY iotml ./iotml
COPY bridge ./bridge
COPY processor ./processor
COPY models ./models

FROM base AS slim
RUN pip install ".[bridge]"
USER iotml
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
ENTRYPOINT ["iotml"]
CMD ["--help"]

FROM base AS full
RUN pip install ".[bridge,processor,plot]"
RUN mkdir -p /models /state && chown iotml:iotml /models /state
USER iotml
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
ENTRYPOINT ["iotml"]
CMD ["--help"]
