# Transakt: one image for every part (wallet node, sandbox bank, worker, migrations).
# The command picks the part: `transakt serve | bank | worker | migrate`, each given
# TRANSAKT_DATABASE_URL and TRANSAKT_REDIS_URL (docker-compose.yml does).
#
# The embedded PostgreSQL and Redis (the `embedded` extra) are left out: a container uses real
# services. For `transakt up` in a single container, build with them:
#   docker build --build-arg TRANSAKT_EXTRAS=embedded -t transakt:up .
#   docker run -p 8080:8080 -p 8081:8081 transakt:up up
FROM python:3.11-slim

# Optional extras to install, comma-separated ("" for none, "embedded" for `transakt up`).
ARG TRANSAKT_EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so editing the code reuses this layer.
# A placeholder package stands in for the sources until they are copied. The build backend
# (setuptools 77 or later, for the SPDX license) is fetched by pip in an isolated build.
COPY pyproject.toml README.md* LICENSE ./
RUN mkdir transakt \
    && touch transakt/__init__.py \
    && pip install ".${TRANSAKT_EXTRAS:+[$TRANSAKT_EXTRAS]}" \
    && pip uninstall --yes transakt \
    && rm -rf transakt build

# --no-deps: every dependency (and extra) is installed above; this adds only the sources.
COPY transakt ./transakt
RUN pip install --no-deps . && rm -rf build

# Never run as root. /data holds the mail sink, and what `transakt up` keeps (embedded
# databases); it is created here so a named volume mounted on it inherits the owner.
RUN groupadd --system transakt \
    && useradd --system --gid transakt --home-dir /app --shell /usr/sbin/nologin transakt \
    && mkdir /data \
    && chown transakt:transakt /data
USER transakt
VOLUME ["/data"]

# Listen on every interface of the container: the port mapping decides what is exposed.
ENV TRANSAKT_HOST=0.0.0.0 \
    TRANSAKT_BANK_HOST=0.0.0.0 \
    TRANSAKT_DATA_DIR=/data

EXPOSE 8080 8081
ENTRYPOINT ["transakt"]
# The wallet node. Without TRANSAKT_DATABASE_URL and TRANSAKT_REDIS_URL it says, in one line,
# to set them (or to build with TRANSAKT_EXTRAS=embedded and run `up`).
CMD ["serve"]
