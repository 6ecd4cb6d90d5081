using System.Globalization;
using System.Text;
using System.Text.Json;

namespace GflTrainer.Coco;

/// <summary>Pull-style JSON tokens over a <see cref="Stream"/> with a bounded buffer: a new
/// <see cref="Utf8JsonReader"/> is resumed from the saved <see cref="JsonReaderState"/> for every token, so a
/// 450 MB COCO file is read with ~1 MB of buffer and no DOM. Big values nobody reads (segmentation polygons) go
/// through <see cref="SkipValue"/>, which keeps one reader per buffer fill.</summary>
internal sealed class JsonTokenStream : IDisposable
{
    readonly Stream _stream;
    readonly string _file;
    byte[] _buf = new byte[1 << 20];
    int _start, _end;
    bool _final;
    long _bufferOffset;            // absolute file offset of _buf[0]
    JsonReaderState _state = new(new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
    byte[] _value = new byte[256];
    int _valueLength;
    bool _valueEscaped;

    public JsonTokenStream(Stream stream, string file)
    {
        _stream = stream;
        _file = file;
    }

    public JsonTokenType TokenType { get; private set; } = JsonTokenType.None;

    /// <summary>Absolute byte offset in the file where the current token starts.</summary>
    public long TokenOffset { get; private set; }

    public bool Read()
    {
        while (true)
        {
            var reader = new Utf8JsonReader(_buf.AsSpan(_start, _end - _start), _final, _state);
            bool ok;
            try { ok = reader.Read(); }
            catch (JsonException e) { throw Malformed(e); }
            if (ok)
            {
                TokenType = reader.TokenType;
                TokenOffset = _bufferOffset + _start + reader.TokenStartIndex;
                if (TokenType is JsonTokenType.String or JsonTokenType.PropertyName or JsonTokenType.Number)
                    CaptureValue(reader.ValueSpan, reader.ValueIsEscaped);
                _start += (int)reader.BytesConsumed;
                _state = reader.CurrentState;
                return true;
            }
            _start += (int)reader.BytesConsumed;
            _state = reader.CurrentState;
            if (_final) return false;
            Refill();
        }
    }

    /// <summary>Skips the value that follows the current property name (or the container the current token opens).</summary>
    public void SkipValue()
    {
        int depth = 0;
        bool started = TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject;
        if (started) depth = 1;
        while (true)
        {
            var reader = new Utf8JsonReader(_buf.AsSpan(_start, _end - _start), _final, _state);
            try
            {
                while (reader.Read())
                {
                    switch (reader.TokenType)
                    {
                        case JsonTokenType.StartArray or JsonTokenType.StartObject: depth++; break;
                        case JsonTokenType.EndArray or JsonTokenType.EndObject: depth--; break;
                    }
                    started = true;
                    if (depth == 0)
                    {
                        TokenType = reader.TokenType;
                        _start += (int)reader.BytesConsumed;
                        _state = reader.CurrentState;
                        return;
                    }
                }
            }
            catch (JsonException e) { throw Malformed(e); }
            _start += (int)reader.BytesConsumed;
            _state = reader.CurrentState;
            if (_final) throw Error("unexpected end of file");
            Refill();
        }
    }

    public bool NameIs(ReadOnlySpan<byte> utf8Name) =>
        !_valueEscaped ? _value.AsSpan(0, _valueLength).SequenceEqual(utf8Name) : Encoding.UTF8.GetBytes(GetString()).AsSpan().SequenceEqual(utf8Name);

    public string GetString()
    {
        if (!_valueEscaped) return Encoding.UTF8.GetString(_value, 0, _valueLength);
        // Re-read the quoted literal alone to let the reader unescape it.
        var quoted = new byte[_valueLength + 2];
        quoted[0] = quoted[^1] = (byte)'"';
        _value.AsSpan(0, _valueLength).CopyTo(quoted.AsSpan(1));
        var r = new Utf8JsonReader(quoted);
        r.Read();
        return r.GetString()!;
    }

    public double GetDouble() => double.Parse(_value.AsSpan(0, _valueLength), NumberStyles.Float, CultureInfo.InvariantCulture);

    public bool TryGetInt64(out long v) => long.TryParse(_value.AsSpan(0, _valueLength), NumberStyles.Integer, CultureInfo.InvariantCulture, out v);

    /// <summary>An error at the current token, with its line number (counted by re-reading the file up to it).</summary>
    public CocoFormatException Error(string what)
    {
        long line = 1, col = 0;
        try
        {
            using var fs = new FileStream(_file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            var chunk = new byte[1 << 16];
            long pos = 0;
            while (pos < TokenOffset)
            {
                int n = fs.Read(chunk, 0, (int)Math.Min(chunk.Length, TokenOffset - pos));
                if (n <= 0) break;
                for (int i = 0; i < n; i++)
                {
                    if (chunk[i] == (byte)'\n') { line++; col = 0; }
                    else col++;
                }
                pos += n;
            }
        }
        catch (IOException) { /* position still reported as a byte offset */ }
        return new CocoFormatException(_file, $"line {line}, column {col + 1} (byte offset {TokenOffset}): {what}");
    }

    /// <summary>Line and column are 1-based; the column counts bytes (UTF-8), as the reader reports them.</summary>
    CocoFormatException Malformed(JsonException e)
    {
        return new CocoFormatException(_file,
            $"malformed JSON at line {(e.LineNumber ?? 0) + 1}, column {(e.BytePositionInLine ?? 0) + 1}: " +
            $"{FirstSentence(e.Message)}", e);
    }

    static string FirstSentence(string m)
    {
        int i = m.IndexOf(" LineNumber", StringComparison.Ordinal);
        return (i > 0 ? m[..i] : m).TrimEnd('.', ' ');
    }

    void CaptureValue(ReadOnlySpan<byte> span, bool escaped)
    {
        if (span.Length > _value.Length) _value = new byte[Math.Max(span.Length, _value.Length * 2)];
        span.CopyTo(_value);
        _valueLength = span.Length;
        _valueEscaped = escaped;
    }

    void Refill()
    {
        int remaining = _end - _start;
        if (_start == 0 && remaining == _buf.Length)
            Array.Resize(ref _buf, _buf.Length * 2);   // one token larger than the buffer (a huge RLE string)
        else if (_start > 0)
        {
            Buffer.BlockCopy(_buf, _start, _buf, 0, remaining);
            _bufferOffset += _start;
        }
        _start = 0;
        _end = remaining;
        while (_end < _buf.Length)
        {
            int n = _stream.Read(_buf, _end, _buf.Length - _end);
            if (n <= 0) { _final = true; break; }
            _end += n;
        }
    }

    public void Dispose() => _stream.Dispose();
}
