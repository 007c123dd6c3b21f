"""The Python baseline of `make startup`: a minimal Lambda function in Python with boto3 that does
the start-up our worker does (SDK clients for DynamoDB, Secrets Manager and SQS, the vendor key
read from Secrets Manager) and speaks the Lambda Runtime API itself with urllib, as a custom
runtime would. Each event is answered after one DynamoDB read, like `GET .../connectors/gradient`.
Not a function of the product: only the yardstick the Rust functions are measured against."""
import json
import os
import urllib.request

import boto3

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"

# --- init (measured: process start -> the first GET .../invocation/next) ---
session = boto3.session.Session()
dynamodb = session.client("dynamodb")
secrets = session.client("secretsmanager")
sqs = session.client("sqs")
vendor_key = secrets.get_secret_value(SecretId=os.environ["GRADIENT_VENDOR_KEY_SECRET_ID"])["SecretString"]
table = os.environ["PSA_TABLE"]

while True:
    with urllib.request.urlopen(API + "/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    claims = event.get("requestContext", {}).get("authorizer", {}).get("jwt", {}).get("claims", {})
    item = dynamodb.get_item(
        TableName=table,
        Key={"pk": {"S": "WS#" + claims.get("workspace_id", "")}, "sk": {"S": "CONNECTOR#gradient"}},
    ).get("Item")
    body = {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"found": item is not None})}
    urllib.request.urlopen(urllib.request.Request(
        API + "/invocation/" + request_id + "/response", data=json.dumps(body).encode(), method="POST"))
