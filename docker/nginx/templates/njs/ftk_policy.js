// The gateway's per-key policy and audit fields, in nginx's njs (0.7.9 in Debian 12; ES5 plus Buffer).
// Copied as it is into GATEWAY_PREFIX/conf/njs/ by `ftk run gateway`; docs/gateway.md explains the flow.
//
// check:  the inference API (POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses). Reads the
//         body, answers 403 for a model the key may not use and 400 for a field above its cap, else hands the
//         request to @vllm (body unchanged) or @vllm_body (the body with the key's max_tokens filled in, or with
//         stream_options.include_usage so the last chunk carries the token counts).
// models: GET /v1/models with only the models the key may use.
// usage:  body filter on vLLM's answer: the token counts into the access log, and the usage chunk taken out again
//         when the client did not ask for it. Streams pass on event by event, never held back.
//
// $ftk_policy is the key's effective policy as JSON (conf/api_keys.conf): models (regular expressions made from
// the globs, or null for all), globs (for messages), max_tokens, n, images (0: no cap).

var MAX_TOKEN_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'];
var N_FIELDS = ['n', 'best_of'];
var IMAGE_TYPES = { image_url: 1, input_image: 1, image: 1 };
var USAGE_STREAMS = { '/v1/chat/completions': 1, '/v1/completions': 1 };
var TAIL = 4096; // bytes of a JSON answer kept to find `usage` (vLLM writes it after the choices)
var CAPTURE_CHARS = 8000; // of a captured prompt and output each (one syslog datagram holds both)

function fail(r, status, type, code, param, message) {
    var err = { message: message, type: type, param: param, code: code };
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({ error: err }));
}

function policyOf(r) {
    return JSON.parse(r.variables.ftk_policy || '{}');
}

function allowed(policy, model) {
    if (!policy.models) {
        return true;
    }
    for (var i = 0; i < policy.models.length; i++) {
        if (new RegExp('^(?:' + policy.models[i] + ')$').test(model)) {
            return true;
        }
    }
    return false;
}

function countImages(value) {
    if (Array.isArray(value)) {
        var sum = 0;
        for (var i = 0; i < value.length; i++) {
            sum += countImages(value[i]);
        }
        return sum;
    }
    if (value === null || typeof value !== 'object') {
        return 0;
    }
    var own = IMAGE_TYPES[value.type] ? 1 : 0;
    return own + countImages(value.content);
}

// The first cap the body breaks, as [field, value, cap], or null.
function overCap(policy, body) {
    var i;
    if (policy.max_tokens) {
        for (i = 0; i < MAX_TOKEN_FIELDS.length; i++) {
            var f = MAX_TOKEN_FIELDS[i];
            if (typeof body[f] === 'number' && body[f] > policy.max_tokens) {
                return [f, body[f], policy.max_tokens];
            }
        }
    }
    if (policy.n) {
        for (i = 0; i < N_FIELDS.length; i++) {
            if (typeof body[N_FIELDS[i]] === 'number' && body[N_FIELDS[i]] > policy.n) {
                return [N_FIELDS[i], body[N_FIELDS[i]], policy.n];
            }
        }
    }
    var images = countImages(body.messages) + countImages(body.input);
    if (policy.images !== undefined && policy.images !== 0 && images > policy.images) {
        return ['images', images, policy.images];
    }
    return null;
}

// Fill in the key's max_tokens when the request names none; ask for usage in a stream. True when changed.
function amend(r, policy, body) {
    var changed = false;
    if (policy.max_tokens && r.uri !== '/v1/embeddings') {
        var named = MAX_TOKEN_FIELDS.some(function (f) { return body[f] !== undefined && body[f] !== null; });
        if (!named) {
            body[r.uri === '/v1/responses' ? 'max_output_tokens' : 'max_tokens'] = policy.max_tokens;
            changed = true;
        }
    }
    if (body.stream === true && USAGE_STREAMS[r.uri]) {
        var opts = body.stream_options;
        if (!(opts && opts.include_usage === true)) {
            var merged = {};
            if (opts && typeof opts === 'object') {
                Object.keys(opts).forEach(function (k) { merged[k] = opts[k]; });
            }
            merged.include_usage = true;
            delete merged.continuous_usage_stats; // no effect without include_usage: the client would see none
            body.stream_options = merged;
            r.variables.ftk_strip_usage = '1';
            changed = true;
        }
    }
    return changed;
}

// GATEWAY_CAPTURE_RATE of the requests: their prompt goes to the capture log line (`ftk gateway capture` masks
// it before writing), the output follows in the body filter.
function sample(r, body) {
    var rate = parseFloat(r.variables.ftk_capture_rate || '0');
    if (!(rate > 0 && Math.random() < rate)) {
        return;
    }
    var prompt = body.messages !== undefined ? body.messages : (body.prompt !== undefined ? body.prompt : body.input);
    r.variables.ftk_capture = '1';
    r.variables.ftk_prompt = clip(typeof prompt === 'string' ? prompt : JSON.stringify(prompt));
}

function clip(text) {
    return text && text.length > CAPTURE_CHARS ? text.slice(0, CAPTURE_CHARS) : (text || '');
}

function check(r) {
    if (r.method !== 'POST') {
        r.internalRedirect('@vllm');
        return;
    }
    var policy = policyOf(r);
    var body;
    try {
        body = JSON.parse(r.requestText || '');
    } catch (e) {
        return fail(r, 400, 'invalid_request_error', 'invalid_json', null,
            'The request body is not valid JSON: ' + e.message);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        return fail(r, 400, 'invalid_request_error', 'invalid_json', null, 'The request body must be a JSON object.');
    }
    var model = typeof body.model === 'string' ? body.model : '';
    r.variables.ftk_model = model;
    if (policy.models && !allowed(policy, model)) {
        return fail(r, 403, 'permission_error', 'model_not_allowed', 'model',
            'This API key may not use the model \'' + model + '\'; allowed models: ' + policy.globs.join(', ') + '.');
    }
    var over = overCap(policy, body);
    if (over) {
        return fail(r, 400, 'invalid_request_error', 'cap_exceeded', over[0],
            over[0] + '=' + over[1] + ' is above what this API key may ask for: ' + over[0] + ' <= ' + over[2] + '.');
    }
    sample(r, body);
    if (amend(r, policy, body)) {
        r.variables.ftk_body = JSON.stringify(body);
        r.internalRedirect('@vllm_body');
        return;
    }
    r.internalRedirect('@vllm');
}

function models(r) {
    var policy = policyOf(r);
    r.variables.ftk_model = '';
    if (!policy.models) {
        r.internalRedirect('@vllm');
        return;
    }
    r.subrequest('/_ftk_models', { method: 'GET' }).then(function (reply) {
        var text = reply.responseText;
        if (reply.status === 200) {
            var list = JSON.parse(text);
            list.data = (list.data || []).filter(function (m) { return allowed(policy, m.id); });
            text = JSON.stringify(list);
        }
        r.headersOut['Content-Type'] = 'application/json';
        r.return(reply.status, text);
    }).catch(function (e) {
        r.error('ftk_policy.models: ' + e);
        fail(r, 502, 'server_error', 'bad_gateway', null, 'Bad gateway: the model list could not be read.');
    });
}

// --- usage: the response body filter ---------------------------------------------------------------------------
// Module variables are this request's own (njs gives every request its own copy of the module).
var pending = null; // an SSE event not complete yet (a stream)
var tail = null; // the last TAIL bytes of a JSON answer
var head = ''; // the first CAPTURE_CHARS of the answer (captured requests only)

function record(r, text) {
    var found = /"usage":\s*\{/g;
    var at = -1;
    while (found.exec(text)) {
        at = found.lastIndex;
    }
    if (at < 0) {
        return;
    }
    var part = text.slice(at, at + 600);
    var prompt = /"(?:prompt|input)_tokens":\s*(\d+)/.exec(part);
    var completion = /"(?:completion|output)_tokens":\s*(\d+)/.exec(part);
    if (prompt) {
        r.variables.ftk_prompt_tokens = prompt[1];
        r.variables.ftk_completion_tokens = completion ? completion[1] : '0';
    }
}

// The events of a stream chunk with the usage chunk the gateway asked for taken out again (the client did not
// ask: it receives what it would have without the gateway). vLLM adds "usage":null to the other chunks then.
function unasked(r, text) {
    var events = text.split('\n\n');
    var kept = [];
    for (var i = 0; i < events.length; i++) {
        var ev = events[i];
        if (/"usage":\s*\{/.test(ev) && /"choices":\s*\[\]/.test(ev)) {
            continue;
        }
        kept.push(ev.replace(/,\s*"usage":\s*null/g, ''));
    }
    return kept.join('\n\n');
}

// The text of a stream's events, for the capture.
function deltas(text) {
    var out = '';
    text.split('\n\n').forEach(function (ev) {
        if (ev.indexOf('data: {') !== 0) {
            return;
        }
        try {
            var choice = (JSON.parse(ev.slice(6)).choices || [])[0] || {};
            out += (choice.delta && choice.delta.content) || choice.text || '';
        } catch (e) {
            out += '';
        }
    });
    return out;
}

function usage(r, data, flags) {
    var type = r.headersOut['Content-Type'] || '';
    var capture = r.variables.ftk_capture === '1';
    if (type.indexOf('text/event-stream') !== 0) {
        if (capture && head.length < CAPTURE_CHARS) {
            head = clip(head + data.toString());
            r.variables.ftk_output = head;
        }
        tail = tail ? Buffer.concat([tail, data]) : data;
        if (tail.length > TAIL) {
            tail = tail.slice(tail.length - TAIL);
        }
        if (flags.last) {
            record(r, tail.toString());
        }
        r.sendBuffer(data, flags);
        return;
    }
    var buf = pending ? Buffer.concat([pending, data]) : data;
    var end = buf.lastIndexOf('\n\n');
    if (end < 0 && !flags.last) {
        pending = Buffer.from(buf); // half an event (a copy: nginx reuses its read buffer); the rest follows
        return;
    }
    var cut = flags.last || end < 0 ? buf.length : end + 2;
    pending = cut < buf.length ? Buffer.from(buf.slice(cut)) : null;
    var done = buf.slice(0, cut);
    var strip = r.variables.ftk_strip_usage === '1';
    if (!strip && !capture && done.indexOf('"usage"') < 0) {
        r.sendBuffer(done, flags);
        return;
    }
    var text = done.toString();
    if (capture && head.length < CAPTURE_CHARS) {
        head = clip(head + deltas(text));
        r.variables.ftk_output = head;
    }
    record(r, text);
    var out = strip ? unasked(r, text) : text;
    if (out.length === 0 && !flags.last) {
        return; // only the usage chunk the client did not ask for: nothing to send (no empty chunk)
    }
    r.sendBuffer(out, flags);
}

export default { check: check, models: models, usage: usage };
