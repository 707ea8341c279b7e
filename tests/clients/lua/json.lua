-- A small JSON decoder for the plain-Lua tests (no vim.json outside Neovim): enough for the
-- shared case tables under tests/cases. Errors name the offset of the bad input.
local M = {}

M.null = setmetatable({}, { __tostring = function() return "null" end })

local decode_value

local function skip(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function utf8_char(code)
  if code < 0x80 then
    return string.char(code)
  elseif code < 0x800 then
    return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
  end
  return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local function decode_string(s, i)
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then
      error("unterminated string at offset " .. i)
    elseif c == '"' then
      return table.concat(out), j + 1
    elseif c == "\\" then
      local e = s:sub(j + 1, j + 1)
      if e == "u" then
        table.insert(out, utf8_char(tonumber(s:sub(j + 2, j + 5), 16)))
        j = j + 6
      elseif ESCAPES[e] then
        table.insert(out, ESCAPES[e])
        j = j + 2
      else
        error("bad escape at offset " .. j)
      end
    else
      table.insert(out, c)
      j = j + 1
    end
  end
end

function decode_value(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local obj = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then
      return obj, i + 1
    end
    while true do
      local key
      key, i = decode_string(s, skip(s, i))
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then
        error("expected ':' at offset " .. i)
      end
      obj[key], i = decode_value(s, i + 1)
      i = skip(s, i)
      local sep = s:sub(i, i)
      if sep == "}" then
        return obj, i + 1
      elseif sep ~= "," then
        error("expected ',' or '}' at offset " .. i)
      end
      i = i + 1
    end
  elseif c == "[" then
    local arr = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then
      return arr, i + 1
    end
    while true do
      arr[#arr + 1], i = decode_value(s, i)
      i = skip(s, i)
      local sep = s:sub(i, i)
      if sep == "]" then
        return arr, i + 1
      elseif sep ~= "," then
        error("expected ',' or ']' at offset " .. i)
      end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif s:sub(i, i + 3) == "true" then
    return true, i + 4
  elseif s:sub(i, i + 4) == "false" then
    return false, i + 5
  elseif s:sub(i, i + 3) == "null" then
    return M.null, i + 4
  end
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if num and num ~= "" then
    return tonumber(num), i + #num
  end
  error("unexpected " .. (c == "" and "end of input" or ("'" .. c .. "'")) .. " at offset " .. i)
end

function M.decode(s)
  local value, i = decode_value(s, 1)
  i = skip(s, i)
  if i <= #s then
    error("trailing text at offset " .. i)
  end
  return value
end

return M
