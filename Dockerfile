FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py ./
COPY videogen ./videogen
COPY workers ./workers
COPY config ./config
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["videogen", "--help"]
