package turboquant_test

// goldenCodes are the codes TestGoldenCodes expects (hex). They pin the code
// format and the seeded rotation, sketch and codebooks across platforms.
var goldenCodes = map[string]string{
	"mse/d128/b3":   "12608d447e0d6767c186735d7b8e44c32a9c7681e4de7b6b6f716e9bb95c59929cc3392d07cedb39ade6c869a2d36925bab1",
	"prod/d100/b4":  "605fd366d7d3263380c62a526406a2164ee44e85fb4091bbd22c519b89ab15cbacc564cc26b5f50eb682a195ac2fcd0621c2ce4b01c432",
	"polar/d128/b0": "565a885a1e5a545b735899591e58ce589df2ed819ad62e60dca29e7f43f235de21180f10efdcd247084b418fe78f61394d206933394fcbbbea6dda045648",
}
