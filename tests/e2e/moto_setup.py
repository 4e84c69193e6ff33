"""Prepares moto's server for the end-to-end tests, using its free (unauthenticated) requests.

Creates an IAM user with an access key and a policy allowing ecr:GetAuthorizationToken and
sts:AssumeRole, and a role that user may assume; then switches SigV4 checking on at once
(POST /moto-api/reset-auth with body 0). Prints one JSON object:
{"access_key_id": .., "secret_access_key": .., "role_arn": .., "session": {.., "session_token": ..}}.

Usage: python3 moto_setup.py http://127.0.0.1:PORT
"""
import json
import sys
import urllib.request

import boto3

endpoint = sys.argv[1]
session = boto3.session.Session(
    aws_access_key_id="AKIASETUPSETUPSETUP0",
    aws_secret_access_key="setup-not-checked-yet",
    region_name="us-east-1",
)
iam = session.client("iam", endpoint_url=endpoint)
iam.create_user(UserName="ecrupdater")
key = iam.create_access_key(UserName="ecrupdater")["AccessKey"]
policy = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "sts:AssumeRole"], "Resource": "*"}
    ],
}
iam.put_user_policy(UserName="ecrupdater", PolicyName="ecr-pull", PolicyDocument=json.dumps(policy))
trust = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}
role = iam.create_role(RoleName="ecr-reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
iam.put_role_policy(RoleName="ecr-reader", PolicyName="ecr-pull", PolicyDocument=json.dumps(policy))

# Signature checking on from now on.
request = urllib.request.Request(
    endpoint + "/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}, method="POST"
)
urllib.request.urlopen(request).read()

# Temporary credentials (with a session token), signed with the user's real key.
sts = boto3.session.Session(
    aws_access_key_id=key["AccessKeyId"],
    aws_secret_access_key=key["SecretAccessKey"],
    region_name="us-east-1",
).client("sts", endpoint_url=endpoint)
assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="e2e")["Credentials"]

print(json.dumps({
    "access_key_id": key["AccessKeyId"],
    "secret_access_key": key["SecretAccessKey"],
    "role_arn": role["Arn"],
    "session": {
        "access_key_id": assumed["AccessKeyId"],
        "secret_access_key": assumed["SecretAccessKey"],
        "session_token": assumed["SessionToken"],
    },
}))
