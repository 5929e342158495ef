using System.Text;
using MimeKit.Text;

namespace CloudSpool.Core.Forward;

/// <summary>
/// Turns HTML mail into text readable on a phone, with MimeKit's <see cref="HtmlTokenizer"/>: blocks become
/// lines, list items get a dash, links keep their address, script/style/head content is dropped, entities
/// are decoded and runs of white space collapse as a browser would (except in &lt;pre&gt;).
/// </summary>
public static class HtmlText
{
    /// <summary>Converts <paramref name="html"/>; never throws for odd markup.</summary>
    public static string Convert(string html)
    {
        var output = new Writer();
        var tokenizer = new HtmlTokenizer(new StringReader(html)) { DecodeCharacterReferences = true };
        var hidden = 0;     // inside <script>, <style>, <head>, <title>
        var preformatted = 0;
        var links = new Stack<string?>();
        while (tokenizer.ReadNextToken(out var token))
        {
            switch (token)
            {
                case HtmlDataToken data when hidden == 0:
                    output.Text(data.Data, preformatted > 0);
                    break;
                case HtmlTagToken tag:
                    Tag(tag, output, ref hidden, ref preformatted, links);
                    break;
            }
        }
        return output.ToString();
    }

    private static void Tag(HtmlTagToken tag, Writer output, ref int hidden, ref int preformatted, Stack<string?> links)
    {
        switch (tag.Id)
        {
            case HtmlTagId.Script or HtmlTagId.Style or HtmlTagId.Head or HtmlTagId.Title:
                if (!tag.IsEmptyElement)
                    hidden = Math.Max(0, hidden + (tag.IsEndTag ? -1 : 1));
                break;
            case HtmlTagId.Br:
                output.LineBreak();
                break;
            case HtmlTagId.Pre:
                preformatted = Math.Max(0, preformatted + (tag.IsEndTag ? -1 : 1));
                output.Paragraph();
                break;
            case HtmlTagId.P or HtmlTagId.H1 or HtmlTagId.H2 or HtmlTagId.H3 or HtmlTagId.H4 or HtmlTagId.H5 or HtmlTagId.H6
                or HtmlTagId.BlockQuote or HtmlTagId.Table or HtmlTagId.UL or HtmlTagId.OL:
                output.Paragraph();
                break;
            case HtmlTagId.Div or HtmlTagId.TR or HtmlTagId.DL or HtmlTagId.DT or HtmlTagId.DD or HtmlTagId.Center
                or HtmlTagId.Address or HtmlTagId.Form:
                output.Line();
                break;
            case HtmlTagId.HR:
                output.Line();
                output.Raw("----");
                output.Line();
                break;
            case HtmlTagId.LI when !tag.IsEndTag:
                output.Line();
                output.Raw("- ");
                break;
            case HtmlTagId.TD or HtmlTagId.TH when !tag.IsEndTag:
                output.Separator(" ");
                break;
            case HtmlTagId.Image when !tag.IsEndTag:
                var alt = Attribute(tag, HtmlAttributeId.Alt);
                if (!string.IsNullOrWhiteSpace(alt))
                    output.Text($"[{alt.Trim()}]", false);
                break;
            case HtmlTagId.A when !tag.IsEndTag && !tag.IsEmptyElement:
                links.Push(Attribute(tag, HtmlAttributeId.Href));
                output.MarkLinkStart();
                break;
            case HtmlTagId.A when tag.IsEndTag && links.Count > 0:
                var href = links.Pop();
                if (href is not null && (href.StartsWith("http:", StringComparison.OrdinalIgnoreCase) || href.StartsWith("https:", StringComparison.OrdinalIgnoreCase))
                    && !output.LinkTextIs(href))
                    output.Text($" <{href.Trim()}>", false);
                break;
        }
    }

    private static string? Attribute(HtmlTagToken tag, HtmlAttributeId id) =>
        tag.Attributes.FirstOrDefault(a => a.Id == id)?.Value;

    /// <summary>Collapses white space and counts pending line breaks so blocks never pile up blank lines.</summary>
    private sealed class Writer
    {
        private readonly StringBuilder _text = new();
        private int _pendingNewlines;
        private bool _pendingSpace;
        private int _linkStart;

        public void Text(string data, bool preformatted)
        {
            if (preformatted)
            {
                Flush();
                _text.Append(data.Replace("\r\n", "\n", StringComparison.Ordinal));
                return;
            }
            foreach (var c in data)
            {
                if (char.IsWhiteSpace(c) && c != '\u3000')
                {
                    _pendingSpace = _text.Length > 0;
                    continue;
                }
                Flush();
                _text.Append(c);
            }
        }

        public void Raw(string text)
        {
            Flush();
            _text.Append(text);
        }

        public void LineBreak()
        {
            _pendingSpace = false;
            _pendingNewlines++;
        }

        public void Line() => Need(1);

        public void Paragraph() => Need(2);

        public void Separator(string separator)
        {
            if (_text.Length > 0 && _pendingNewlines == 0 && _text[^1] != '\n')
            {
                _pendingSpace = false;
                _text.Append(separator);
            }
        }

        public void MarkLinkStart()
        {
            Flush();
            _linkStart = _text.Length;
        }

        public bool LinkTextIs(string href) =>
            _linkStart <= _text.Length && _text.ToString(_linkStart, _text.Length - _linkStart).Trim().Equals(href.Trim(), StringComparison.OrdinalIgnoreCase);

        private void Need(int newlines)
        {
            _pendingSpace = false;
            if (_text.Length > 0)
                _pendingNewlines = Math.Max(_pendingNewlines, newlines);
        }

        private void Flush()
        {
            if (_pendingNewlines > 0)
            {
                while (_text.Length > 0 && _text[^1] == ' ')
                    _text.Length--;
                _text.Append('\n', Math.Min(_pendingNewlines, 2));
            }
            else if (_pendingSpace && _text.Length > 0 && _text[^1] != '\n' && _text[^1] != ' ')
            {
                _text.Append(' ');
            }
            _pendingNewlines = 0;
            _pendingSpace = false;
        }

        public override string ToString() => _text.ToString().Trim();
    }
}
