#!/bin/sh
# The health check of the never-healthy test image: always fails, saying so.
echo "healthcheck: error: this test image is never healthy"
exit 1
