# MovieAugur: one image for every process (commands, queries, projectors, one-off CLI jobs);
# infra/compose.yml picks the role with the command. Build from the repository root:
#   docker build -t movieaugur .
FROM python:3.11-slim

# implicit/numpy: one BLAS thread per process (the services scale by processes, and implicit
# warns and slows down when OpenBLAS spawns its own pool). No .pyc litter, unbuffered logs.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPENBLAS_NUM_THREADS=1 \
    MOVIEAUGUR_DATA_DIR=/var/lib/movieaugur

WORKDIR /src
# Only what the wheel is built from (pyproject's package list; README.md is its `readme`), so an
# edit to tests or docs does not invalidate the install layer.
COPY pyproject.toml README.md ./
COPY kernel ./kernel
COPY domain ./domain
COPY commands ./commands
COPY projections ./projections
COPY queries ./queries
COPY offline ./offline
COPY infra ./infra
COPY movieaugur ./movieaugur
COPY testing ./testing
# A regular (non-editable) install: the running code is site-packages, /src is removed after.
RUN pip install . && rm -rf /src

# Non-root; the data dir (bootstrap creates it, the trainer saves models there) is the only
# place it writes.
RUN useradd --system --uid 10001 --create-home --home-dir /home/movieaugur movieaugur \
    && mkdir -p /var/lib/movieaugur && chown movieaugur /var/lib/movieaugur
USER movieaugur
WORKDIR /home/movieaugur

EXPOSE 8080 8081 8082
ENTRYPOINT ["movieaugur"]
CMD ["--help"]
