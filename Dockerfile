# Breakwater gateway image: a wheel built in one stage, installed into a clean slim image in the next.
#   docker build -t breakwater .
#   docker run -p 8080:8080 -v "$PWD/breakwater.yaml:/etc/breakwater/breakwater.yaml:ro" breakwater \
#       --config /etc/breakwater/breakwater.yaml --workers 2
# The config is mounted (a file, or a Kubernetes ConfigMap); secrets come as environment variables
# or files named by the config's env:/file: references, never baked into the image.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2.post1
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \
    && groupadd --system --gid 10001 breakwater \
    && useradd --system --uid 10001 --gid breakwater --home-dir /var/lib/breakwater --create-home breakwater \
    && mkdir -p /etc/breakwater
WORKDIR /var/lib/breakwater
USER 10001:10001
EXPOSE 8080
# python, not curl (the slim image has none): /healthz answers 200 while the process serves
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["breakwater", "serve", "--host", "0.0.0.0", "--port", "8080"]
# no arguments: the embedded default config; mount a config and pass --config (and --workers N)
CMD []
