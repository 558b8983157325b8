-- wrk script: every request is a PUT .../bypassMFA for a different user, as a real run sends.
-- Reads TOKEN and ENV_ID from the environment (set by simulator-put-rate.sh).
local threads_made = 0

function setup(thread)
  thread:set("thread_number", threads_made)
  threads_made = threads_made + 1
end

function init(args)
  sent = 0
  token = os.getenv("TOKEN")
  environment = os.getenv("ENV_ID")
  headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  body = '{"bypassMFAEnabledUntil":"2031-01-02T03:04:05.678Z"}'
end

function request()
  sent = sent + 1
  local user = string.format("%08x-0000-4000-8000-%012x", thread_number, sent)
  return wrk.format("PUT", "/v1/environments/" .. environment .. "/users/" .. user .. "/bypassMFA", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx answers: %d, socket errors: %d\n",
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
