# The Q-Backbone image: the operator, its worker (fragment) pods and the device plugin run
# the same `qbackbone` entry point, as the Helm chart does (command: [qbackbone], args:
# [operator ...] | [worker ...] | [device-plugin ...]).
#
# Build:  docker build -t qbackbone:dev .
# Try:    docker run --rm qbackbone:dev fleet
#
# The build stage has no Rust toolchain, so a Docker-built image plans with the scheduler's
# pure-Python placement engine (same plans, about 10x slower); hack/build-image.sh builds the
# wheel with the host's cargo and so carries the compiled engine.
#
# Stage 1 builds wheels for the project and every dependency; stage 2 installs them into a
# slim image without compilers or pip caches and runs as an unprivileged user (the chart sets
# runAsNonRoot and a read-only root filesystem; nothing here writes outside /tmp).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY controllers ./controllers
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 10001 --create-home qbackbone
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
ENV PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["qbackbone"]
CMD ["--help"]
