# Transakt: one image for every part (wallet node, sandbox bank, worker, migrations).
# The command picks the part: `transakt serve | bank | worker | migrate | up`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so editing the code reuses this layer.
# A placeholder package stands in for the sources until they are copied.
COPY pyproject.toml README.md* ./
RUN mkdir transakt \
    && touch transakt/__init__.py \
    && pip install . \
    && pip uninstall --yes transakt \
    && rm -rf transakt build

COPY transakt ./transakt
RUN pip install --no-deps . && rm -rf build

# Never run as root. /data holds what `transakt up` keeps (embedded databases, mail sink);
# it is created here so a named volume mounted on it inherits the owner.
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
# Alone, the image runs the whole system on its embedded PostgreSQL and Redis.
CMD ["up"]
