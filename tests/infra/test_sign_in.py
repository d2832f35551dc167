"""Sign-in in the template (docs/product.md W9): the issuer's settings reach every function, from the
parameters or from the optional Cognito user pool, and the pool is built for a console that signs in
with the authorization code flow and PKCE, without letting users pick their tenant or role."""

from __future__ import annotations

import json

import pytest

from tests.infra.build import Build, _allowed, _environment, _functions, _ref

pytestmark = pytest.mark.infra

OIDC = {
    "COACHING_OIDC_ISSUER": "OidcIssuer",
    "COACHING_OIDC_JWKS_URL": "OidcJwksUrl",
    "COACHING_OIDC_AUDIENCE": "OidcAudience",
    "COACHING_OIDC_TENANT_CLAIM": "OidcTenantClaim",
    "COACHING_OIDC_ROLE_CLAIM": "OidcRoleClaim",
}
POOL = ("UserPool", "AdminGroup", "SupervisorGroup", "AgentGroup", "ConsoleUserPoolClient")


def test_issuer_settings_come_from_the_parameters_or_the_user_pool(packaged: Build) -> None:
    for function in _functions(packaged):
        env = _environment(packaged, function)
        for variable, parameter in OIDC.items():
            condition, from_pool, from_parameter = env[variable]["Fn::If"]
            assert condition == "MakeUserPool" and from_parameter == _ref(parameter), (function, variable)
            assert from_pool, (function, variable)
    env = _environment(packaged, "WsAuthorizer")
    assert env["COACHING_OIDC_AUDIENCE"]["Fn::If"][1] == _ref("ConsoleUserPoolClient")
    assert env["COACHING_OIDC_TENANT_CLAIM"]["Fn::If"][1] == "custom:tid"
    assert env["COACHING_OIDC_ROLE_CLAIM"]["Fn::If"][1] == "cognito:groups"
    issuer = env["COACHING_OIDC_ISSUER"]["Fn::If"][1]["Fn::Sub"]
    assert issuer == "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${UserPool}"
    assert env["COACHING_OIDC_JWKS_URL"]["Fn::If"][1]["Fn::Sub"] == issuer + "/.well-known/jwks.json"
    defaults = {p: packaged.template["Parameters"][p].get("Default") for p in OIDC.values()}
    assert defaults == {
        "OidcIssuer": "",
        "OidcJwksUrl": "",
        "OidcAudience": "",
        "OidcTenantClaim": "tid",
        "OidcRoleClaim": "role",
    }
    assert packaged.template["Parameters"]["CreateUserPool"]["Default"] == "false"


def test_the_user_pool_is_optional_and_holds_staff_only(packaged: Build) -> None:
    resources = packaged.resources
    for name in POOL:
        assert resources[name]["Condition"] == "MakeUserPool", name
    assert resources["UserPoolDomain"]["Condition"] == "MakeUserPoolDomain"
    pool = resources["UserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # no self sign-up
    assert [(a["Name"], a["AttributeDataType"]) for a in pool["Schema"]] == [("tid", "String")]
    groups = {
        resources[g]["Properties"]["GroupName"]: resources[g]["Properties"]["Precedence"]
        for g in ("AdminGroup", "SupervisorGroup", "AgentGroup")
    }
    assert groups == {"admin": 0, "supervisor": 1, "agent": 2}


def test_the_console_client_uses_the_code_flow_with_pkce_and_cannot_write_its_tenant(packaged: Build) -> None:
    client = packaged.resources["ConsoleUserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False  # a public client: PKCE, no secret in the browser
    assert client["AllowedOAuthFlows"] == ["code"] and client["AllowedOAuthFlowsUserPoolClient"] is True
    assert "openid" in client["AllowedOAuthScopes"]
    # The stack's own console is always a callback; the parameter adds another one only when given.
    console_url = {"Fn::Sub": "https://${ConsoleDistribution.DomainName}/"}
    assert client["CallbackURLs"] == {"Fn::If": ["HasExtraCallback", [console_url, _ref("ConsoleCallbackUrl")], [console_url]]}
    assert "custom:tid" in client["ReadAttributes"]
    assert client["WriteAttributes"] == ["name"]  # never custom:tid: a user cannot move tenant
    assert "ALLOW_USER_PASSWORD_AUTH" not in client.get("ExplicitAuthFlows", [])


def test_sign_in_adds_no_permission(packaged: Build) -> None:
    """Verification reads public keys over HTTPS: no IAM statement names Cognito or the pool."""
    for owner, statement in _allowed(packaged):
        text = json.dumps(statement)
        assert "cognito" not in text.lower() and "UserPool" not in text, (owner, statement)
