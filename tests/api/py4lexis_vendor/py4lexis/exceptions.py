# Vendored from lexis-project/Py4Lexis (https://github.com/lexis-project/Py4Lexis), commit 713e253e734ac6a0fb532deeb4c23d95000bc347,
# path src/py4lexis/exceptions.py  -- unmodified below this header. Copyright (c) 2022 LEXIS, MIT License (the licence text is in tests/api/py4lexis_vendor/LICENSE).
from keycloak.exceptions import KeycloakPostError, KeycloakAuthenticationError

class Py4LexisAuthException(KeycloakAuthenticationError):
    pass

class Py4LexisPostException(KeycloakPostError):
    pass

class Py4LexisException(Exception):
    pass