# Vendored in part from lexis-project/Py4Lexis (https://github.com/lexis-project/Py4Lexis), commit 713e253e734ac6a0fb532deeb4c23d95000bc347,
# path src/py4lexis/session.py. Copyright (c) 2022 LEXIS, MIT License (the licence text is in
# tests/api/py4lexis_vendor/LICENSE).
#
# What py4lexis.workflows.airflow.Airflow uses of a LexisSession: the methods check_token,
# handle_request_status, get_token and get_refresh_token are copied unmodified from upstream. Only the
# log-in differs: upstream's __init__ logs in interactively (password prompt or browser), checks the
# API of api.lexis.tech and opens an iRODS session; this one is handed the AAI's token answer and the
# Airflow API URL instead (API_AIR, what upstream reads from its helper), and refresh_token asks the
# same AAI token endpoint with a refresh grant (upstream: python-keycloak's refresh_token, via kck_oi).

from __future__ import annotations
from typing import Optional
from requests import Response, post
from time import perf_counter
import logging
import json
from py4lexis.exceptions import Py4LexisException, Py4LexisPostException


class LexisSession(object):

    def __init__(self, tokens: dict, api_air: str, token_url: str, client_id: str,
                 exception_on_error: Optional[bool] = True) -> None:
        self.exception_on_error: bool = exception_on_error
        self.logging = logging
        self.show_prints: bool = False
        self._token_url, self._client_id = token_url, client_id
        self.API_AIR: str = api_air
        self.USERNAME: str = ""
        self.REFRESH_TOKEN: str = tokens["refresh_token"]
        self.TOKEN: str = tokens["access_token"]
        self._token_expiration = tokens["expires_in"]
        self._refresh_expiration = tokens["refresh_expires_in"]
        self._token_retrieved_at = perf_counter()
        self.API_HEADER: dict[str, str] = {
            "Authorization": "Bearer " + self.TOKEN,
            "Content-type": "application/json"
        }

    def refresh_token(self) -> bool:
        answer = post(self._token_url, data={"grant_type": "refresh_token", "client_id": self._client_id,
                                             "refresh_token": self.REFRESH_TOKEN})
        if answer.status_code != 200:
            if self.exception_on_error:
                raise Py4LexisException("Some errors occurred while handling Keycloak tokens. See log file, please.")
            return False
        tokens = answer.json()
        self.TOKEN = tokens["access_token"]
        self.REFRESH_TOKEN = tokens["refresh_token"]
        self._token_retrieved_at = perf_counter()
        self.API_HEADER = {"Authorization": "Bearer " + self.TOKEN}
        return True

    def get_token(self) -> str:
        """
            Returns
            -------
            str
                User's access token.
        """
        return self.TOKEN


    def get_refresh_token(self) -> str:
        """
            Returns
            -------
            str
                User's refresh token.
        """
        return self.REFRESH_TOKEN
    

    def check_token(self):
        now: float = perf_counter()
        elapsed: float = now - self._token_retrieved_at

        if elapsed < self._token_expiration and elapsed < self._refresh_expiration:
            pass
        elif elapsed >= self._token_expiration and elapsed < self._refresh_expiration:
            self.refresh_token()
        else:
            print(f"elapsed: {elapsed}")
            print(f"token exp: {self._token_expiration}")
            print(f"refrsh exp: {self._refresh_expiration}")
            if self.exception_on_error:
                raise Py4LexisException("Token has expired and can't be refreshed. Please, relog the session.")
            
            if self.show_prints:
                print(f"Token has expired and can't be refreshed. Please, relog the session.")


    def handle_request_status(self, 
                              response: Response, 
                              log_msg: str, 
                              to_json: bool = True,
                              suppress_print: Optional[bool]=True) -> tuple[dict | bytes, bool, bool]:
        """
            Method which handles request status. If token is invalid then it tries to refresh it.

            Parameters
            ----------
            response : Response
                HTTP Request response.
            log_msg : str
                Message for the logger.
            to_json : bool, optional
                Convert content of response to JSON. By default is set to True.
            suppress_print : bool, optional
                If True, the errors prints to console will be suppressed.
            
            Returns
            -------
            bool
                request_solved: If True, request status is solved.
            bool
                is_error: If True, some errors have occured.
        """

        status_solved: bool = False
        content: dict | bytes = {}
        is_error: bool = False
        try:
            if 200 <= response.status_code <= 299:
                status_solved = True
                is_error = False
                if to_json:
                    content = response.json()
                else:
                    content = response.content

                self.logging.debug(log_msg + " -- OK")
            else:
                if response.status_code == 404 or response.status_code >= 500:
                    is_error = True
                    status_solved = True
                    content = response.content
                else:
                    content = response.json()
                    if "errorString" in content.keys():
                        if content["errorString"] == "Inactive token":
                            self.logging.error(log_msg + " -- TOKEN -- FAILED")
                            is_refreshed: bool = self.refresh_token()
                            if is_refreshed:
                                status_solved = False
                                is_error = False
                                self.logging.debug(log_msg + " -- REFRESH TOKEN -- OK")
                            else:
                                status_solved = True
                                is_error = True
                                self.logging.error(log_msg + " -- REFRESH TOKEN -- FAILED")
                                if not suppress_print:
                                    print(log_msg + " -- REFRESH TOKEN -- FAILED")
                        else:
                            status_solved = True
                            is_error = True
                            self.logging.error(log_msg + f" -- Bad request status: '{response.status_code}' -- FAILED")
                            self.logging.debug(content)

                            if not suppress_print:
                                print(log_msg + f" -- Bad request status: '{response.status_code}' -- FAILED")
                    else:
                        status_solved = True
                        is_error = True
                        self.logging.error(log_msg + f" -- Bad request status: '{response.status_code}' -- FAILED")
                        self.logging.debug(content)

                        if not suppress_print:
                            print(log_msg + f" -- Bad request status: '{response.status_code}' -- FAILED") 
        
        except json.decoder.JSONDecodeError:
            is_error = True
            self.logging.error(log_msg + f" -- JSON response can't be decoded -- FAILED")

            if not suppress_print:
                print(log_msg + f" -- JSON response can't be decoded -- FAILED")
        
        return content, status_solved, is_error       
