"""The AWS stand-in toolkit (installs as audit_bedrock.standin): moto launcher, estate builders, HTTP proxy.

The demo, the tests and the benchmark build their fake AWS from these modules:

- `server`: one moto launcher (in-process ThreadedMotoServer or a subprocess, always on 127.0.0.1), with an
  optional O(1) access-key -> account index for large estates;
- `estate`: the builders of a fake organization (nested OUs, member accounts, Bedrock logging setups) and
  the two estates made of them, the demo's and the benchmark's;
- `proxy`: one forwarding HTTP proxy (stdlib only) with latency, fault and counting modes; it names each
  request's IAM action with the policy generator's table (audit_bedrock.policy.iam_action);
- `replay`: a record-and-replay server for the benchmark: moto's answers for an 8-account template
  organization, recorded through the proxy, served for an organization of N accounts (moto stays the reference:
  tests/unit/standin/test_replay.py).

Importing the package imports neither moto nor boto3; `server` imports moto only when it launches one.
"""
