package turboquant_test

// goldenCodes are the codes TestGoldenCodes expects (hex).
var goldenCodes = map[string]string{}
