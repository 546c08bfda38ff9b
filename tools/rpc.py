# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""A minimal JSON-RPC client for trytond, as the sao web client talks to it.

    client = RPCClient('http://127.0.0.1:8000', 'isp_demo')
    client.login('admin', password)
    client.call('model.party.party.search_count',
        [('is_subscriber', '=', True)])
"""
import base64
import itertools

import requests


class RPCError(Exception):
    pass


class RPCClient:

    def __init__(self, url, database, timeout=60):
        self.url = url.rstrip('/') + '/%s/rpc/' % database
        self.timeout = timeout
        self.session = requests.Session()
        self.ids = itertools.count(1)
        self.context = {}

    def _post(self, method, params):
        response = self.session.post(self.url, json={
                'id': next(self.ids), 'method': method, 'params': params},
            timeout=self.timeout)
        response.raise_for_status()
        answer = response.json()
        if answer.get('error'):
            raise RPCError(answer['error'])
        return answer['result']

    def login(self, login, password, language='en'):
        user_id, session, _ = self._post(
            'common.db.login', [login, {'password': password}, language])
        token = base64.b64encode(
            f'{login}:{user_id}:{session}'.encode()).decode()
        self.session.headers['Authorization'] = f'Session {token}'
        self.context = self._post('model.res.user.get_preferences', [True, {}])
        return user_id

    def call(self, method, *args, context=None):
        return self._post(method, [*args, {**self.context, **(context or {})}])
