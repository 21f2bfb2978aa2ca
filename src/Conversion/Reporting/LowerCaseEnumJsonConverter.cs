using System.Text.Json;
using System.Text.Json.Serialization;

namespace Converter.Conversion.Reporting;

/// <summary>An enum's JSON form as the command line spells it: its lower-case name ("tensor", "block"); numbers are refused.</summary>
public sealed class LowerCaseEnumJsonConverter<T>() : JsonStringEnumConverter<T>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false)
    where T : struct, Enum;
