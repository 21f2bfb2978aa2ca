using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Converter.Tools.CalibrationData;

/// <summary>A documented member: its short name and the prose of its summary, for the technical question-and-answer dialogues.</summary>
public sealed record DocumentedMember(string Type, string Member, string Summary, string Id);

/// <summary>
/// English technical and mathematical prose: the XML API documentation of the .NET reference assemblies (the SDK's
/// packs/Microsoft.NETCore.App.Ref, MIT) and of MathNet.Numerics (MIT). Each type becomes one document: its summary,
/// then each member's signature, summary, parameters, return value and remarks as plain text.
/// </summary>
public static partial class XmlDocSources
{
    private const int DocumentChars = 6000;

    public static (List<SourceDocument> Documents, List<DocumentedMember> Members) FromFiles(string source, IEnumerable<(string Id, string Xml)> files)
    {
        var documents = new List<SourceDocument>();
        var members = new List<DocumentedMember>();
        foreach (var (fileId, xml) in files.OrderBy(f => f.Id, StringComparer.Ordinal))
        {
            var doc = XDocument.Parse(xml);
            var byType = new SortedDictionary<string, StringBuilder>(StringComparer.Ordinal);
            // Overloads mostly repeat one summary; the first one documented says it, the rest would only repeat it.
            var said = new HashSet<(string, string)>();
            foreach (var member in doc.Descendants("member"))
            {
                var name = (string?)member.Attribute("name");
                if (name is null || name.Length < 3 || name[1] != ':')
                    continue;
                var summary = Prose(member.Element("summary"));
                if (summary.Length == 0)
                    continue;
                var (type, shortName) = Split(name);
                if (!said.Add((type, summary)))
                    continue;
                if (!byType.TryGetValue(type, out var text))
                    byType[type] = text = new StringBuilder(type).Append('\n');
                if (name[0] == 'T')
                {
                    text.Append(summary).Append("\n\n");
                }
                else
                {
                    text.Append(shortName).Append(": ").Append(summary).Append('\n');
                    foreach (var p in member.Elements("param"))
                        AppendIfAny(text, "  " + (string?)p.Attribute("name") + ": ", Prose(p));
                    AppendIfAny(text, "  Returns: ", Prose(member.Element("returns")));
                    AppendIfAny(text, "  Remarks: ", Prose(member.Element("remarks")));
                    text.Append('\n');
                    if (summary.Length is >= 40 and <= 600)
                        members.Add(new DocumentedMember(ShortType(type), shortName, summary, $"{fileId}/{name}"));
                }
            }
            foreach (var (type, text) in byType)
            {
                int chunk = 0;
                foreach (var piece in Budget.Chunks(text.ToString(), DocumentChars))
                    documents.Add(new SourceDocument(source, "MIT", $"{fileId}/{type}#{chunk++}", piece));
            }
        }
        return (documents, members);
    }

    /// <summary>The XML doc files of the reference assemblies under an SDK's packs/Microsoft.NETCore.App.Ref (the newest version).</summary>
    public static IEnumerable<(string Id, string Xml)> ReferencePack(string sdkRoot)
    {
        var packs = Path.Combine(sdkRoot, "packs", "Microsoft.NETCore.App.Ref");
        var version = Directory.GetDirectories(packs).Order(StringComparer.Ordinal).Last();
        var refDir = Directory.GetDirectories(Path.Combine(version, "ref")).Order(StringComparer.Ordinal).Last();
        foreach (var path in Directory.GetFiles(refDir, "*.xml").Order(StringComparer.Ordinal))
            yield return (Path.GetFileName(path), File.ReadAllText(path));
    }

    /// <summary>The XML doc file of one target framework inside a .nupkg (the first lib/ folder in name order that has one).</summary>
    public static IEnumerable<(string Id, string Xml)> Package(string nupkg)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var entry = zip.Entries.Where(e => e.FullName.StartsWith("lib/", StringComparison.Ordinal) && e.FullName.EndsWith(".xml", StringComparison.Ordinal))
            .OrderBy(e => e.FullName, StringComparer.Ordinal).FirstOrDefault()
            ?? throw new InvalidDataException($"{nupkg}: no lib/*/*.xml documentation file");
        using var reader = new StreamReader(entry.Open());
        yield return (Path.GetFileName(entry.FullName), reader.ReadToEnd());
    }

    private static void AppendIfAny(StringBuilder text, string label, string prose)
    {
        if (prose.Length > 0)
            text.Append(label).Append(prose).Append('\n');
    }

    /// <summary>"M:System.Math.Sqrt(System.Double)" → ("System.Math", "Sqrt(Double)"); "T:System.Math" → ("System.Math", "Math").</summary>
    private static (string Type, string Member) Split(string name)
    {
        var body = name[2..];
        if (name[0] == 'T')
            return (body, ShortType(body));
        int paren = body.IndexOf('(');
        var head = paren < 0 ? body : body[..paren];
        int dot = head.LastIndexOf('.');
        var type = dot < 0 ? head : head[..dot];
        var member = dot < 0 ? head : head[(dot + 1)..];
        if (paren >= 0)
            member += "(" + string.Join(", ", body[(paren + 1)..^1].Split(',').Select(ShortType)) + ")";
        return (type, GenericArity().Replace(member.Replace("#ctor", "constructor", StringComparison.Ordinal), ""));
    }

    private static string ShortType(string full)
    {
        var name = full.Split('{')[0];
        int dot = name.LastIndexOf('.');
        return (dot < 0 ? name : name[(dot + 1)..]).Split('`')[0];
    }

    /// <summary>The text of a doc element: cref and langword references as their names, code as code, paragraphs and list items on lines of their own.</summary>
    private static string Prose(XElement? element)
    {
        if (element is null)
            return "";
        var sb = new StringBuilder();
        Append(element, sb);
        var lines = sb.ToString().Split('\n').Select(l => Spaces().Replace(l, " ").Trim()).Where(l => l.Length > 0);
        return string.Join('\n', lines);
    }

    private static void Append(XElement element, StringBuilder sb)
    {
        foreach (var node in element.Nodes())
        {
            switch (node)
            {
                case XText t:
                    sb.Append(t.Value.Replace('\n', ' '));
                    break;
                case XElement e when e.Name == "see" || e.Name == "seealso":
                    sb.Append(e.Value.Length > 0 ? e.Value : (string?)e.Attribute("langword") ?? Reference((string?)e.Attribute("cref") ?? (string?)e.Attribute("href") ?? ""));
                    break;
                case XElement e when e.Name == "paramref" || e.Name == "typeparamref":
                    sb.Append((string?)e.Attribute("name"));
                    break;
                case XElement e when e.Name == "c":
                    sb.Append('`').Append(e.Value).Append('`');
                    break;
                case XElement e when e.Name == "code":
                    sb.Append('\n').Append(e.Value.Trim()).Append('\n');
                    break;
                case XElement e when e.Name == "para" || e.Name == "item" || e.Name == "listheader":
                    sb.Append('\n').Append(e.Name == "item" ? "- " : "");
                    Append(e, sb);
                    sb.Append('\n');
                    break;
                case XElement e:
                    Append(e, sb);
                    sb.Append(' ');
                    break;
            }
        }
    }

    private static string Reference(string cref) => cref.Length > 2 && cref[1] == ':' ? Split(cref).Member.Split('(')[0] : cref;

    /// <summary>The ``1 of a generic method's documentation id.</summary>
    [GeneratedRegex("``[0-9]+")]
    private static partial Regex GenericArity();

    [GeneratedRegex("[ \t\r]+")]
    private static partial Regex Spaces();
}
