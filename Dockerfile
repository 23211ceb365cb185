# Operator and worker image (issue 9 will wire it into the Helm chart).
# Build: docker build -t qbackbone:dev .   Run: docker run --rm qbackbone:dev fleet
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 10001 --create-home qbackbone
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
ENTRYPOINT ["qbackbone"]
CMD ["--help"]
