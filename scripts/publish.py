"""Upload what `make package` built and print the CloudFormation console link that deploys it.

    make publish BUCKET=my-code-bucket [REGION=eu-west-1] [STACK=supervisor-coaching-prod]

The zip and the template go to ``s3://BUCKET/supervisor-coaching/<sha-12 of the zip>/`` (a new
key for every build, which is what makes a stack update replace the functions' code). The printed
quick-create link opens the console's "Create stack" page with the template, the stack name and
the code location filled in: a console deploy is this command, the link, and the secret
parameters' names. The bucket must be in the stack's Region (Lambda reads code from its own
Region only). Uses the usual AWS credentials (environment, profile, SSO); needs s3:PutObject and
s3:GetBucketLocation on the bucket.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

PROJECT = Path(__file__).resolve().parent.parent
PREFIX = "supervisor-coaching"


def bucket_region(s3: object, bucket: str) -> str:
    location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")  # type: ignore[attr-defined]
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def quick_create_url(region: str, template_url: str, stack: str, bucket: str, key: str) -> str:
    query = urlencode(
        {"templateURL": template_url, "stackName": stack, "param_CodeBucket": bucket, "param_CodeKey": key}, quote_via=quote
    )
    return f"https://{region}.console.aws.amazon.com/cloudformation/home?region={region}#/stacks/create/review?{query}"


def publish(bucket: str, region: str, stack: str, dist: Path) -> tuple[str, str, str]:
    """Upload; return (code key, template URL, quick-create URL)."""
    import boto3

    zip_path, template = dist / "deployment.zip", dist / "sam.yaml"
    for needed in (zip_path, template):
        if not needed.exists():
            raise SystemExit(f"{needed} is missing: run `make package` first")
    s3 = boto3.client("s3", region_name=region)
    where = bucket_region(s3, bucket)
    if where != region:
        raise SystemExit(
            f"bucket {bucket} is in {where}, not {region}: Lambda reads its code from a bucket in "
            "the stack's own Region (pass REGION=..., or use a bucket there)"
        )
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()[:12]
    code_key = f"{PREFIX}/{digest}/deployment.zip"
    template_key = f"{PREFIX}/{digest}/sam.yaml"
    s3.upload_file(str(zip_path), bucket, code_key)
    s3.upload_file(str(template), bucket, template_key, ExtraArgs={"ContentType": "text/yaml"})
    endpoint = s3.meta.endpoint_url  # https://s3.<region>.<the partition's domain>
    template_url = endpoint.replace("://", f"://{bucket}.", 1) + "/" + quote(template_key)
    return code_key, template_url, quick_create_url(region, template_url, stack, bucket, code_key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bucket", required=True, help="an S3 bucket of yours in the stack's Region")
    parser.add_argument("--region", default="", help="the stack's Region (default: your AWS configuration's)")
    parser.add_argument("--stack", default="supervisor-coaching-prod", help="stack name to suggest")
    parser.add_argument("--dist", default=PROJECT / "dist", type=Path, help="what `make package` wrote")
    args = parser.parse_args(argv)
    region = args.region
    if not region:
        import boto3

        region = boto3.session.Session().region_name or ""
        if not region:
            parser.error("no Region: pass REGION=... (make) or --region, or configure a default Region")
    code_key, template_url, url = publish(args.bucket, region, args.stack, args.dist)
    print(f"code:     s3://{args.bucket}/{code_key}")
    print(f"template: {template_url}")
    print("Open this link to create the stack (fill in the parameters, tick the two acknowledgements):")
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
